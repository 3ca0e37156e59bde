/**
 * The far side of the transport benchmarks, in its own process (as a runner is).
 * BENCH_MODE=flame: a cluster node with a counting actor, an echo actor and a plain-code sink
 * (BENCH_BATCHED=1: with nact's batched delivery enabled).
 * BENCH_MODE=bare:  a bare ws client with msgpackr that counts batches and echoes ping-pongs.
 */
import { Packr } from 'msgpackr';
import { WebSocket } from 'ws';
import { dispatch, spawn, type Ref } from 'nact';
import { startNode } from '../src/cluster/node.js';
import { systemMap } from '../src/cluster/nact-internals.js';
import { enableBatchedDelivery } from '../src/cluster/batched-delivery.js';
import { countUntilExpected, type CountMsg } from './bench-actors.js';


if (process.env.BENCH_MODE === 'bare') {
  const packr = new Packr({ useRecords: true });
  const ws = new WebSocket(process.env.BENCH_URL!, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  let count = 0;
  let expect = -1;
  ws.on('message', (data: Buffer) => {
    const value = packr.unpack(data) as unknown;
    if (Array.isArray(value)) {
      count += value.length;
    } else {
      const m = value as { id?: number; expect?: number; msg?: unknown };
      if (m.expect !== undefined) {
        expect = m.expect;
        count = 0;
      } else {
        ws.send(packr.pack({ id: m.id, ok: true, result: m.msg }));
      }
    }
    if (expect >= 0 && count >= expect) {
      expect = -1;
      ws.send(packr.pack({ done: count }));
    }
  });
  ws.on('open', () => process.send!({ ready: true }));
  process.on('disconnect', () => process.exit(0));
} else {
  if (process.env.BENCH_BATCHED === '1') enableBatchedDelivery();
  const node = await startNode({ log: 'warn' });
  spawn(node.system, countUntilExpected, 'counter', { initialState: { count: 0, expect: -1 } });
  // 'echo' for one-at-a-time round trips; echo-0..9 share pipelined ones, since one nact actor
  // handles one message per loop turn and would otherwise be what is measured.
  for (const name of ['echo', ...Array.from({ length: 10 }, (_, i) => `echo-${i}`)]) {
    spawn(node.system, (_s: undefined, msg: { value: unknown; sender: Ref<unknown> }) => {
      dispatch(msg.sender, msg.value);
      return undefined;
    }, name);
  }
  // Routed like any actor (system map, path walk) but counted in plain code: the transport
  // without nact's one-message-per-setImmediate mailbox.
  let count = 0;
  let expect = -1;
  let replyTo: unknown;
  const system = systemMap.find(node.name) as unknown as { children: Map<string, unknown> };
  system.children.set('sink', {
    children: new Map(),
    dispatch(msg: CountMsg) {
      if ('type' in msg) {
        count = 0;
        expect = msg.n;
        replyTo = msg.sender;
        return;
      }
      if (++count === expect) dispatch(replyTo as Ref<number>, count);
    },
  });
  process.send!({ ready: true, node: node.name });
  process.on('disconnect', () => void node.stop().then(() => process.exit(0)));
}
