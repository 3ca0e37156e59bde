/**
 * The cancellation signal of the call a runner is executing. `callSignal()` aborts when the
 * caller cancels or the call's deadline passes, so cooperative work can stop (JavaScript cannot
 * preempt a running function).
 *
 * It must be called synchronously at the start of the shipped function, before its first
 * `await`: the runner sets the current call while the function starts. (AsyncLocalStorage would
 * lift that rule, but on Node 20 it turns on promise hooks for every promise of the process,
 * which costs every call.)
 */
import { FlameError } from '../errors.js';

/** One call's cancellation: its AbortController is only made if the function asks for it. */
export class CallCancellation {
  #controller: AbortController | undefined;
  #reason: unknown;
  #aborted = false;

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

/** What {@link callSignal} reads: the call being started, if any. */
interface CurrentCall {
  current: { readonly signal: AbortSignal } | undefined;
}

/**
 * One slot per process, not per copy of this module: a runner started from the bundled entry
 * point runs its own copy of this file, while the shipped code calls `callSignal()` from the
 * `flame-actors` it imports.
 */
const CURRENT_CALL = Symbol.for('flame-actors.currentCall');
const slot: CurrentCall = ((globalThis as { [CURRENT_CALL]?: CurrentCall })[CURRENT_CALL] ??= { current: undefined });

/** Starts `fn(...args)` with `cancellation` as the current call's: {@link startWith} without a closure per call. */
export function startCall(cancellation: CallCancellation, fn: (...args: unknown[]) => unknown, args: unknown[]): unknown {
  const previous = slot.current;
  slot.current = cancellation;
  try {
    return fn(...args);
  } finally {
    slot.current = previous;
  }
}

const NO_ARGS: unknown[] = [];

/** Starts `fn` with `cancellation` as the current call's (for its synchronous start). */
export function startWith<T>(cancellation: CallCancellation, fn: () => T): T {
  return startCall(cancellation, fn, NO_ARGS) as T;
}

/**
 * The AbortSignal of the call being started on this runner. Call it at the top of the shipped
 * function, before any `await`, and keep the signal:
 *
 * ```ts
 * export async function render(url: string) {
 *   const signal = callSignal();
 *   const res = await fetch(url, { signal });
 * }
 * ```
 */
export function callSignal(): AbortSignal {
  const current = slot.current;
  if (!current) {
    throw new FlameError('callSignal() is only available while a runner starts a call: call it synchronously at the top of the shipped function, before its first await');
  }
  return current.signal;
}
