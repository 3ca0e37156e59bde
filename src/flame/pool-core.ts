/**
 * The private core behind the public `Pool`: calls and placed actors, the pool's own state
 * (running, stopping, stopped) and its stop. Runners and their lifecycle belong to the
 * {@link RunnerSupervisor}; choosing a runner for a call to its {@link Placement}.
 */
import type { EventEmitter } from 'node:events';
import type { ClusterNode } from '../cluster/node.js';
import { onAbort } from '../abort.js';
import { backoffDelay, type BackoffPolicy } from '../backoff.js';
import { AbortError, BootError, CallTimeoutError, ConnectError, NodeDownError, PayloadTooLargeError, PoolStoppedError, QueryTimeoutError, RunnerDownError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CallOutcome } from '../observability/diagnostics.js';
import type { Backend } from './backend.js';
import type { ShippedFunction } from './fn-ref.js';
import type { Lease } from './lease.js';
import type { ResolvedPoolOptions } from './options.js';
import { releaseParentNode } from './parent-node.js';
import { registerPool, unregisterPool, type PoolInternals } from './parent-services.js';
import type { PoolEvents, PoolState, PoolStatus } from './pool-types.js';
import { SERVICE, type IdleReply, type PlaceReply, type RunnerFault } from './protocol.js';
import type { RunnerHandle } from './runner-handle.js';
import { EXIT_REASON_GRACE, RunnerSupervisor } from './supervisor.js';

/** Backoff between the attempts of a call with `retries`. */
const RETRY_BACKOFF: BackoffPolicy = { baseMs: 50, maxMs: 2000 };

/** How one call runs. */
export interface RunOptions {
  timeout: number;
  signal: AbortSignal | undefined;
  /** Further attempts allowed after RunnerDownError or BootError. */
  retries: number;
  what: 'call' | 'cast';
  /** Filled where the call settles when `flame-actors:call` is traced (the last attempt's runner and times). */
  outcome?: CallOutcome | undefined;
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

export interface CoreContext {
  readonly o: ResolvedPoolOptions;
  readonly backend: Backend;
  readonly node: ClusterNode;
  readonly logger: Logger;
  readonly events: EventEmitter<PoolEvents>;
  /** The node is the process-wide shared one, released when this pool stops. */
  readonly ownsNode: boolean;
}

export class PoolCore implements PoolInternals {
  readonly name: string;
  readonly #o: ResolvedPoolOptions;
  readonly #c: CoreContext;
  readonly #node: ClusterNode;
  readonly #events: EventEmitter<PoolEvents>;
  #supervisor: RunnerSupervisor | undefined;
  #state: PoolState = 'running';
  #inFlight = 0;
  #idleCallers: (() => void)[] = [];
  #stopPromise: Promise<void> | undefined;

  /** Registers the pool on its node (throws InvalidOptionError for a duplicate name). */
  constructor(context: CoreContext) {
    this.name = context.o.name;
    this.#o = context.o;
    this.#c = context;
    this.#node = context.node;
    this.#events = context.events;
    registerPool(context.node, this);
  }

  /** Starts the lifecycle once the backend is initialised, and boots `min` runners. */
  async start(): Promise<void> {
    this.#supervisor = new RunnerSupervisor({ ...this.#c, running: () => this.#state === 'running' });
    if (this.#o.min > 0) await this.#supervisor.bootMin(this.#o.min);
  }

  /** The backend reports a runner ended (before `start` there is none). */
  runnerExited(runnerId: string, reason: string): void {
    this.#supervisor?.runnerExited(runnerId, reason);
  }

  /** The pool's logger (off unless its `log` or `logger` option says otherwise). */
  get logger(): Logger {
    return this.#c.logger;
  }

  /** The parent node its runners are linked to. */
  get node(): ClusterNode {
    return this.#node;
  }

  get state(): PoolState {
    return this.#state;
  }

  /** Takes work only while running. */
  refuseWhenStopped(): PoolStoppedError | undefined {
    return this.#state === 'running' ? undefined : new PoolStoppedError(`pool ${this.name} is ${this.#state} and takes no new work`);
  }

  // ---------------------------------------------------------------- calls

  /**
   * Runs a shipped function on a runner within one deadline (waiting for a slot plus running),
   * again on another runner after RunnerDownError or BootError while `retries` and the deadline
   * allow, with backoff.
   */
  async run(shipped: ShippedFunction, args: unknown[], run: Readonly<RunOptions>): Promise<unknown> {
    const deadline = performance.now() + run.timeout;
    // Counted from the start, so stop() waits for a call that has not been placed yet.
    this.#inFlight++;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.#attempt(shipped, args, run, deadline);
        } catch (error) {
          const retryable = error instanceof RunnerDownError || error instanceof BootError;
          if (!retryable || run.retries === 0) throw error;
          const delay = backoffDelay(RETRY_BACKOFF, attempt);
          const last = attempt > run.retries || performance.now() + delay >= deadline || this.#state !== 'running' || run.signal?.aborted;
          if (last) throw withAttempts(error, attempt);
          this.#c.logger.debug(`${run.what} attempt ${attempt} failed (${error.message}); retrying in ${Math.round(delay)} ms`);
          await pause(delay, run.signal);
        }
      }
    } finally {
      this.#ended();
    }
  }

  #ended(): void {
    this.#inFlight--;
    if (this.#inFlight === 0 && this.#idleCallers.length > 0) {
      for (const resolve of this.#idleCallers.splice(0)) resolve();
    }
  }

  /**
   * A slot held by a stream or a tracked resource until released (see lease.ts). A stream is
   * work in flight, which stop() lets finish; a tracked resource only holds its runner.
   */
  async lease(deadline: number, signal: AbortSignal | undefined, what: string, timeout: number, inFlight: boolean): Promise<Lease> {
    const runner = await this.#checkout(deadline, signal);
    if (inFlight) this.#inFlight++;
    let held = true;
    return {
      runner: runner.id,
      node: runner.node!,
      release: () => {
        if (!held) return;
        held = false;
        this.#supervisor!.placement.checkin(runner);
        if (inFlight) this.#ended();
      },
      failure: async (error) => {
        if (error instanceof NodeDownError) await runner.exitReason(EXIT_REASON_GRACE);
        return this.#callError(error, runner, timeout, deadline, signal, what);
      },
    };
  }

  /** One placement and run of a call. */
  async #attempt(shipped: ShippedFunction, args: unknown[], { timeout, signal, what, outcome }: Readonly<RunOptions>, deadline: number): Promise<unknown> {
    const started = performance.now();
    let runner: RunnerHandle | undefined;
    let placedAt = started;
    let failure: Error | undefined;
    try {
      // A free slot is handed over synchronously: no microtask spent waiting for it.
      const checkout = this.#checkout(deadline, signal);
      runner = checkout instanceof Promise ? await checkout : checkout;
      placedAt = performance.now();
      const remaining = deadline - placedAt;
      return await this.#node.request(runner.node!, SERVICE.call, {
        fn: shipped, args, timeout: remaining === Infinity ? -1 : Math.max(1, Math.floor(remaining)),
      }, { timeout: remaining, signal });
    } catch (error) {
      if (runner && error instanceof NodeDownError) await runner.exitReason(EXIT_REASON_GRACE);
      failure = runner ? this.#callError(error, runner, timeout, deadline, signal, what) : (error as Error);
      throw failure;
    } finally {
      if (runner) this.#supervisor!.placement.checkin(runner);
      // A call ended: the `call` event, and the flame-actors:call trace when traced.
      if (outcome) {
        outcome.runner = runner?.id;
        outcome.node = runner?.node;
        outcome.waitMs = placedAt - started;
        outcome.runMs = performance.now() - placedAt;
      }
      if (this.#events.listenerCount('call') > 0) {
        this.#events.emit('call', { runner: runner?.id, waitMs: placedAt - started, runMs: performance.now() - placedAt, error: failure });
      }
    }
  }

  /** Places an actor from a shipped factory; its slot stays taken until the actor stops. */
  async place(shipped: ShippedFunction, args: unknown[], timeout: number, signal: AbortSignal | undefined, link: boolean): Promise<unknown> {
    const deadline = performance.now() + timeout;
    const runner = await this.#checkout(deadline, signal);
    let placed = false;
    try {
      const remaining = deadline - performance.now();
      const reply = (await this.#node.request(runner.node!, SERVICE.place, {
        fn: shipped, args, timeout: -1, link, caller: this.#node.name,
      }, { timeout: remaining, ...(signal ? { signal } : {}) })) as PlaceReply;
      runner.placed.add(reply.child);
      placed = true;
      return reply.ref;
    } catch (error) {
      if (error instanceof NodeDownError) await runner.exitReason(EXIT_REASON_GRACE);
      throw this.#callError(error, runner, timeout, deadline, signal, 'placeChild');
    } finally {
      // The slot stays taken by the placed actor; it is freed when the runner reports its exit.
      if (!placed) this.#supervisor!.placement.checkin(runner);
    }
  }

  #checkout(deadline: number, signal: AbortSignal | undefined): RunnerHandle | Promise<RunnerHandle> {
    const stopped = this.refuseWhenStopped();
    if (stopped) return Promise.reject(stopped);
    return this.#supervisor!.placement.checkout(deadline, signal);
  }

  #callError(error: unknown, runner: RunnerHandle, timeout: number, deadline: number, signal: AbortSignal | undefined, what: string): Error {
    if (error instanceof PayloadTooLargeError) {
      const size = error.size === undefined ? 'a message' : `a message of ${error.size} bytes`;
      return new PayloadTooLargeError(
        `${what} on runner ${runner.id}: ${size} exceeds the pool's maxPayload (${this.#o.maxPayload} bytes) and was not sent; ` +
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

  status(): PoolStatus {
    return {
      name: this.name,
      state: this.#state,
      runners: [...(this.#supervisor?.runners() ?? [])].map((r) => r.status()),
      queued: this.#supervisor?.placement.waiting ?? 0,
      min: this.#o.min,
      max: this.#o.max,
      maxConcurrency: this.#o.maxConcurrency,
    };
  }

  // ---------------------------------------------------------------- what runners ask (PoolInternals)

  hasRunner(runnerId: string): boolean {
    return this.#supervisor?.hasRunner(runnerId) ?? false;
  }

  onReady(runnerId: string, node: string): boolean {
    return this.#supervisor?.connected(runnerId, node) ?? false;
  }

  onIdle(runnerId: string): IdleReply {
    return this.#supervisor?.idle(runnerId) ?? { stop: true };
  }

  onChildExit(runnerId: string, child: number): void {
    this.#supervisor?.childExited(runnerId, child);
  }

  onRunnerError(runnerId: string, fault: RunnerFault): void {
    this.#c.logger.warn(`runner ${runnerId}: ${fault.kind}${fault.origin ? ` in ${fault.origin}` : ''}${fault.failedCall ? ' (its call failed with it)' : ''}: ${fault.stack ?? `${fault.name}: ${fault.message}`}`);
    if (this.#events.listenerCount('runnerError') > 0) this.#events.emit('runnerError', { runner: runnerId, ...fault });
  }

  // ---------------------------------------------------------------- stop

  /** Drains and stops (idempotent); resolves once every runner is gone and the backend released. */
  stop(): Promise<void> {
    this.#stopPromise ??= this.#stop();
    return this.#stopPromise;
  }

  /** Forgets a pool whose backend failed to initialise (nothing was started). */
  async abandon(): Promise<void> {
    this.#state = 'stopped';
    unregisterPool(this.#node, this);
    if (this.#c.ownsNode) await releaseParentNode(this.#node);
  }

  async #stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopping';
    this.#supervisor?.placement.failWaiters(new PoolStoppedError(`pool ${this.name} is stopping`));
    if (this.#inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#o.shutdownTimeout);
        this.#idleCallers.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    await this.#supervisor?.stop();
    await this.#c.backend.dispose().catch((e: Error) => this.#c.logger.warn(`backend dispose: ${e.message}`));
    unregisterPool(this.#node, this);
    this.#state = 'stopped';
    if (this.#c.ownsNode) await releaseParentNode(this.#node);
    this.#c.logger.info('stopped');
  }
}
