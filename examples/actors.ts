/**
 * Actor factories for the examples. A factory receives the ref to spawn under (on the runner or
 * node that hosts the actor) plus the caller's arguments, spawns with nact and returns the ref.
 */
import { dispatch, spawn, type Ref } from 'nact';

export type CounterMsg =
  | { type: 'inc'; by?: number }
  | { type: 'get'; sender: Ref<CounterReply> };

/** What `get` answers: the count, and where the actor lives (to show it is remote). */
export interface CounterReply {
  count: number;
  pid: number;
  host: string;
}

/** A counter actor starting at `initial`. */
export function counter(parent: Ref<never>, initial = 0): Ref<CounterMsg> {
  return spawn(
    parent,
    (count: number, msg: CounterMsg) => {
      if (msg.type === 'inc') return count + (msg.by ?? 1);
      dispatch(msg.sender, { count, pid: process.pid, host: process.env.POD_IP ?? 'this process' });
      return count;
    },
    undefined,
    { initialState: initial },
  );
}
