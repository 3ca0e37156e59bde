/**
 * What the pool benchmarks run on runners, by module reference (the runner imports this file
 * itself, as an app's runner imports the app): a counting actor, an echo actor, and a bare
 * ws + msgpackr peer that measures the same link without flame-actors on it.
 */
import { Packr } from 'msgpackr';
import { dispatch, spawn, type Ref } from 'nact';
import { WebSocket } from 'ws';

export type CounterMsg = { n: number } | { sync: number; sender: Ref<number> };
export type EchoMsg = { value: unknown; sender: Ref<unknown> };

/** Counts messages; a `sync` message is answered with the count so far (mailboxes are FIFO). */
export function counter(parent: Ref<never>): Ref<CounterMsg> {
  return spawn(parent, (count: number, msg: CounterMsg) => {
    if ('sync' in msg) {
      dispatch(msg.sender, count);
      return count;
    }
    return count + 1;
  }, undefined, { initialState: 0 });
}

/** What the transport benchmarks' counting actor takes: `expect` starts a count, answered with `n` once `n` messages arrived. */
export type CountMsg = { type: 'expect'; n: number; sender: Ref<number> } | { n: number };
export type CountState = { count: number; expect: number; sender?: Ref<number> };

/**
 * The transport benchmarks' counting actor (the same function on a peer node and in the local
 * baseline). The new state is written out field by field: `{ ...state, count }` takes a slow path
 * in V8 (a spread whose key is then redefined), which cost the receiving process about a tenth of
 * its time, in every row that used this actor.
 */
export function countUntilExpected(state: CountState, msg: CountMsg): CountState {
  if ('type' in msg) return { count: 0, expect: msg.n, sender: msg.sender };
  const count = state.count + 1;
  if (count === state.expect && state.sender) dispatch(state.sender, count);
  return { count, expect: state.expect, sender: state.sender };
}

export function echo(parent: Ref<never>): Ref<EchoMsg> {
  return spawn(parent, (_s: undefined, msg: EchoMsg) => {
    dispatch(msg.sender, msg.value);
    return undefined;
  });
}

/**
 * Connects a bare ws to the benchmark's server at `url` and serves it until it closes: a frame
 * holding an array is a batch of one-way messages (counted), `{ sync }` is answered with the count,
 * anything else is echoed back decoded and re-encoded (as a query reply is). Resolves to the count.
 */
export function bareWsPeer(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const packr = new Packr({ useRecords: true });
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024, handshakeTimeout: 10_000 });
    let count = 0;
    ws.on('message', (data: Buffer) => {
      const value = packr.unpack(data) as unknown;
      if (Array.isArray(value)) {
        count += value.length;
      } else if (value !== null && typeof value === 'object' && 'sync' in value) {
        ws.send(packr.pack({ sync: (value as { sync: number }).sync, count }));
      } else {
        ws.send(packr.pack(value));
      }
    });
    ws.on('error', reject);
    ws.on('close', () => resolve(count));
  });
}
