/**
 * One `pool.call` (or `cast`) from start to settlement: placement, the request to the runner,
 * the `call` event, and the retries after RunnerDownError or BootError.
 *
 * It is the hot path of a pool, so it is one object per call that is also the receiver of the
 * runner's reply: no async function, no promise but the caller's, no closure per call. A call
 * that finds a free slot and succeeds goes from the caller to the wire and back to the caller's
 * promise without a microtask in between; only failures (rare) take the async route.
 */
import type { EventEmitter } from 'node:events';
import type { ClusterNode, ReplyReceiver } from '../cluster/node.js';
import { onAbort } from '../abort.js';
import { backoffDelay, type BackoffPolicy } from '../backoff.js';
import { AbortError, BootError, CallTimeoutError, ConnectError, NodeDownError, PayloadTooLargeError, ProtocolError, QueryTimeoutError, RunnerDownError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CallTrace } from '../observability/diagnostics.js';
import type { ShippedFunction } from './fn-ref.js';
import type { PoolEvents } from './pool-types.js';
import { SERVICE, UNKNOWN_FUNCTION, type CallRequest } from './protocol.js';
import type { RunnerHandle } from './runner-handle.js';
import { EXIT_REASON_GRACE } from './supervisor.js';

/** Backoff between the attempts of a call with `retries`. */
const RETRY_BACKOFF: BackoffPolicy = { baseMs: 50, maxMs: 2000 };

/** How one call runs. */
export interface RunOptions {
  timeout: number;
  signal: AbortSignal | undefined;
  /** Further attempts allowed after RunnerDownError or BootError. */
  retries: number;
  what: 'call' | 'cast';
}

/** What a call needs from its pool. */
export interface CallHost {
  readonly node: ClusterNode;
  readonly logger: Logger;
  readonly events: EventEmitter<PoolEvents>;
  /** The pool's maxPayload, for the error saying a message was too large. */
  readonly maxPayload: number;
  /** The pool takes work (a retry is not made once it stops). */
  running(): boolean;
  /** A free slot now, or a promise of one (rejects when the pool stopped, the deadline passed, the signal aborted). */
  checkout(deadline: number, signal: AbortSignal | undefined): RunnerHandle | Promise<RunnerHandle>;
  checkin(runner: RunnerHandle): void;
  /** The call has settled (it was counted in flight from its start). */
  ended(): void;
}

/** The final error of a retried call, saying how many attempts were made. */
function withAttempts(error: RunnerDownError | BootError, attempts: number): Error {
  if (attempts === 1) return error;
  const message = `${error.message} (gave up after ${attempts} attempts)`;
  return error instanceof RunnerDownError
    ? new RunnerDownError(message, { cause: error.cause, details: error.details, attempts })
    : new BootError(message, { cause: error.cause, details: error.details, attempts });
}

/** Waits `ms` between attempts; the caller's signal ends the wait with AbortError. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe?.();
      resolve();
    }, ms);
    const unsubscribe = signal && onAbort(signal, () => {
      clearTimeout(timer);
      reject(new AbortError('aborted while waiting to retry', { cause: signal.reason }));
    });
  });
}

/**
 * The error a caller sees for what ended its work on `runner`: the runner's loss as
 * RunnerDownError, a deadline as CallTimeoutError, a message too large for the pool's
 * maxPayload saying so; anything else as it is.
 */
export function callError(error: unknown, runner: RunnerHandle, maxPayload: number, timeout: number, deadline: number, signal: AbortSignal | undefined, what: string): Error {
  if (error instanceof PayloadTooLargeError) {
    const size = error.size === undefined ? 'a message' : `a message of ${error.size} bytes`;
    return new PayloadTooLargeError(
      `${what} on runner ${runner.id}: ${size} exceeds the pool's maxPayload (${maxPayload} bytes) and was not sent; ` +
        'send less (a path, a URL, a key) or raise it: Pool.start({ maxPayload })',
      { cause: error, details: { ...error.details, option: 'maxPayload', runner: runner.id } },
    );
  }
  if (error instanceof NodeDownError || error instanceof ConnectError) {
    return new RunnerDownError(`runner ${runner.id} (${runner.node}) went down during the ${what}: ${runner.exitedBecause ?? runner.reason ?? error.message}`, {
      cause: error, runner: runner.id, ...(runner.node ? { node: runner.node } : {}),
    });
  }
  // The runner enforces the same deadline, so its cancellation may answer before our own timer.
  const expired = performance.now() >= deadline && !signal?.aborted;
  if (error instanceof QueryTimeoutError || expired) {
    return new CallTimeoutError(`${what} did not finish within its timeout of ${timeout} ms on runner ${runner.id}; the remote work was cancelled`, {
      cause: error, runner: runner.id, timeout,
    });
  }
  return error as Error;
}

/**
 * One call within one deadline (waiting for a slot plus running), made again on another runner
 * after RunnerDownError or BootError while `retries` and the deadline allow, with backoff.
 * Settles the caller's promise exactly once.
 */
export class PoolCall implements ReplyReceiver {
  readonly #host: CallHost;
  readonly #shipped: ShippedFunction;
  readonly #args: unknown[];
  readonly #run: Readonly<RunOptions>;
  readonly #deadline: number;
  readonly #resolve: (value: unknown) => void;
  readonly #reject: (error: unknown) => void;
  /** The call's `flame-actors:call` trace, when someone listens. */
  readonly #trace: CallTrace | undefined;
  #attempts = 0;
  #runner: RunnerHandle | undefined = undefined;
  #started = 0;
  #placedAt = 0;
  /** The closure was sent again in full after the runner said it no longer had it. */
  #resent = false;

  constructor(
    host: CallHost, shipped: ShippedFunction, args: unknown[], run: Readonly<RunOptions>, trace: CallTrace | undefined,
    resolve: (value: unknown) => void, reject: (error: unknown) => void,
  ) {
    this.#host = host;
    this.#trace = trace;
    this.#shipped = shipped;
    this.#args = args;
    this.#run = run;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#deadline = performance.now() + run.timeout;
  }

  /** Makes the first attempt (the caller counted the call in flight). */
  start(): void {
    this.#attempt();
  }

  #attempt(): void {
    this.#attempts++;
    this.#runner = undefined;
    this.#started = this.#placedAt = performance.now();
    // A free slot is handed over synchronously: no microtask spent waiting for it.
    const checkout = this.#host.checkout(this.#deadline, this.#run.signal);
    if (checkout instanceof Promise) {
      checkout.then((runner) => this.#send(runner), (error: unknown) => void this.#failed(error));
    } else {
      this.#send(checkout);
    }
  }

  #send(runner: RunnerHandle): void {
    this.#runner = runner;
    const placedAt = (this.#placedAt = performance.now());
    const remaining = this.#deadline - placedAt;
    const shipped = this.#shipped;
    let fn: ShippedFunction | number = shipped;
    // A closure the runner was sent before goes as its id: no source to encode, decode and look up.
    if (shipped.kind === 'closure' && shipped.id !== undefined && !this.#resent) {
      if (runner.shipped.has(shipped)) fn = shipped.id;
      else runner.shipped.add(shipped);
    }
    const request: CallRequest = { fn, args: this.#args, timeout: remaining === Infinity ? -1 : Math.max(1, Math.floor(remaining)) };
    this.#host.node.requestTo(runner.node!, SERVICE.call, request, this, remaining, this.#run.signal);
  }

  /** The runner's answer, or why there is none (see {@link ReplyReceiver}). */
  settled(ok: boolean, value: unknown): void {
    if (!ok) {
      const runner = this.#runner;
      if (runner && !this.#resent && value instanceof ProtocolError && value.details.reason === UNKNOWN_FUNCTION && runner.shipped.has(this.#shipped)) {
        this.#resent = true;
        // The runner no longer has the closure (its cache is bounded): sent again in full, on the
        // same slot, once (the runner forgot it, so it is not marked as sent any more).
        runner.shipped.delete(this.#shipped);
        this.#send(runner);
        return;
      }
      void this.#failed(value);
      return;
    }
    try {
      this.#attemptEnded(undefined);
    } catch (error) {
      // A `call` listener threw: the caller gets that error (and the link is not blamed).
      this.#settle(false, error);
      return;
    }
    this.#settle(true, value);
  }

  /** An attempt failed: the error the caller sees, then another attempt or the end. */
  async #failed(error: unknown): Promise<void> {
    try {
      const runner = this.#runner;
      if (runner && error instanceof NodeDownError) await runner.exitReason(EXIT_REASON_GRACE);
      const { timeout, signal, retries, what } = this.#run;
      const failure = runner ? callError(error, runner, this.#host.maxPayload, timeout, this.#deadline, signal, what) : (error as Error);
      this.#attemptEnded(failure);
      const retryable = failure instanceof RunnerDownError || failure instanceof BootError;
      if (!retryable || retries === 0) throw failure;
      const attempt = this.#attempts;
      const delay = backoffDelay(RETRY_BACKOFF, attempt);
      const last = attempt > retries || performance.now() + delay >= this.#deadline || !this.#host.running() || signal?.aborted;
      if (last) throw withAttempts(failure, attempt);
      this.#host.logger.debug(`${what} attempt ${attempt} failed (${failure.message}); retrying in ${Math.round(delay)} ms`);
      await pause(delay, signal);
      this.#attempt();
    } catch (final) {
      this.#settle(false, final);
    }
  }

  /** One attempt ended: its slot is free again; the `call` event and what the trace reports of it. */
  #attemptEnded(failure: Error | undefined): void {
    const runner = this.#runner;
    this.#runner = undefined;
    const host = this.#host;
    if (runner) host.checkin(runner);
    this.#trace?.attempt(runner?.id, runner?.node, this.#placedAt - this.#started, performance.now() - this.#placedAt);
    if (host.events.listenerCount('call') > 0) {
      host.events.emit('call', { runner: runner?.id, waitMs: this.#placedAt - this.#started, runMs: performance.now() - this.#placedAt, error: failure });
    }
  }

  #settle(ok: boolean, value: unknown): void {
    this.#host.ended();
    this.#trace?.settled(ok, value);
    if (ok) this.#resolve(value);
    else this.#reject(value);
  }
}
