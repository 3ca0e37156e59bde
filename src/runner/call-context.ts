/**
 * The context of the call a runner is executing, reachable from inside the shipped function
 * without changing its parameters: `callSignal()` aborts when the caller cancels or the call's
 * deadline passes, so cooperative work can stop (JavaScript cannot preempt a running function).
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const current = new AsyncLocalStorage<AbortSignal>();

/** Runs `fn` with `signal` as the current call's signal. */
export function runWithSignal<T>(signal: AbortSignal, fn: () => T): T {
  return current.run(signal, fn);
}

/**
 * The AbortSignal of the call being executed (on a runner), or a signal that never aborts
 * outside a call. Pass it to `fetch`, timers and streams so a cancelled call stops its work.
 */
export function callSignal(): AbortSignal {
  return current.getStore() ?? new AbortController().signal;
}
