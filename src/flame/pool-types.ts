/**
 * The shapes a pool shows the outside: its status and its events.
 */
import type { FactoryArgs, FnArgs, FnResult } from './fn-ref.js';
import type { CallOptions, PlaceOptions } from './options.js';
import type { RunnerFault } from './protocol.js';
import type { RunnerStatus } from './runner-handle.js';
import type { Wire } from './wire-types.js';

/** `pool.status()`: what a person watching the pool wants to see. */
export interface PoolStatus {
  name: string;
  state: PoolState;
  runners: RunnerStatus[];
  /** Callers waiting for a free slot. */
  queued: number;
  min: number;
  max: number;
  maxConcurrency: number;
}

/** `running` takes work; `stopping` drains; `stopped` is final. */
export type PoolState = 'running' | 'stopping' | 'stopped';

/** Events a pool emits (telemetry; FLAME has none). */
export interface PoolEvents {
  runnerUp: [runner: RunnerStatus, bootMs: number];
  runnerDown: [runner: RunnerStatus, reason: string];
  bootFailed: [error: Error];
  /** A `cast` failed; nobody awaits it, so this is the only place its error shows. */
  castError: [error: Error];
  /** A call (or cast) ended: where it ran, how long it waited for a slot and ran, and its error if any. */
  call: [info: CallInfo];
  /**
   * Shipped work left an error unhandled on a runner (an uncaught exception, a rejection nobody
   * awaited). The runner and its other calls go on; the call it was traced to failed with it.
   */
  runnerError: [info: RunnerErrorInfo];
}

/** The `runnerError` event's payload. */
export interface RunnerErrorInfo extends RunnerFault {
  runner: string;
}

/** The `call` event's payload. */
export interface CallInfo {
  /** The runner it ran on, or undefined if it never got one. */
  runner: string | undefined;
  /** Milliseconds spent waiting for a slot (0 when one was free). */
  waitMs: number;
  /** Milliseconds from placement to the answer. */
  runMs: number;
  error: Error | undefined;
}

/**
 * What follows the function in `call` and `cast`: the arguments are required whenever the
 * function has required parameters, and typed as its parameters.
 */
export type CallRest<F> = [] extends FnArgs<F>
  ? [args?: FnArgs<F>, options?: CallOptions]
  : [args: FnArgs<F>, options?: CallOptions];

/** What follows the factory in `placeChild`: its parameters after the parent ref. */
export type PlaceRest<F> = [] extends FactoryArgs<F>
  ? [args?: FactoryArgs<F>, options?: PlaceOptions]
  : [args: FactoryArgs<F>, options?: PlaceOptions];

/** What a call resolves to: the function's result as it arrives from the runner (see {@link Wire}). */
export type CallResult<F> = Wire<FnResult<F>>;
