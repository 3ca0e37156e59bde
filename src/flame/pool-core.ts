/**
 * The private core behind the public `Pool`: calls and placed actors, the pool's own state
 * (running, stopping, stopped) and its stop. Runners and their lifecycle belong to the
 * {@link RunnerSupervisor}; choosing a runner for a call to its {@link Placement}.
 */
import type { EventEmitter } from 'node:events';
import type { ClusterNode } from '../cluster/node.js';
import { CallTimeoutError, ConnectError, NodeDownError, PoolStoppedError, QueryTimeoutError, RunnerDownError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Backend } from './backend.js';
import type { ShippedFunction } from './fn-ref.js';
import type { ResolvedPoolOptions } from './options.js';
import { releaseParentNode } from './parent-node.js';
import { registerPool, unregisterPool, type PoolInternals } from './parent-services.js';
import type { PoolEvents, PoolState, PoolStatus } from './pool-types.js';
import { SERVICE, type IdleReply, type PlaceReply } from './protocol.js';
import type { RunnerHandle } from './runner-handle.js';
import { RunnerSupervisor } from './supervisor.js';

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

  get state(): PoolState {
    return this.#state;
  }

  /** Takes work only while running. */
  refuseWhenStopped(): PoolStoppedError | undefined {
    return this.#state === 'running' ? undefined : new PoolStoppedError(`pool ${this.name} is ${this.#state} and takes no new work`);
  }

  // ---------------------------------------------------------------- calls

  /** Runs a shipped function on a runner within one deadline: waiting for a slot plus running. */
  async run(shipped: ShippedFunction, args: unknown[], timeout: number, signal: AbortSignal | undefined, what: 'call' | 'cast'): Promise<unknown> {
    const started = performance.now();
    const deadline = started + timeout;
    // Counted from the start, so stop() waits for a call that has not been placed yet.
    this.#inFlight++;
    let runner: RunnerHandle | undefined;
    let placedAt = started;
    let failure: Error | undefined;
    try {
      runner = await this.#checkout(deadline, signal);
      placedAt = performance.now();
      const remaining = deadline - placedAt;
      return await this.#node.request(runner.node!, SERVICE.call, {
        fn: shipped, args, timeout: remaining === Infinity ? -1 : Math.max(1, Math.floor(remaining)),
      }, { timeout: remaining, ...(signal ? { signal } : {}) });
    } catch (error) {
      failure = runner ? this.#callError(error, runner, timeout, deadline, signal, what) : (error as Error);
      throw failure;
    } finally {
      this.#inFlight--;
      if (runner) this.#supervisor!.placement.checkin(runner);
      if (this.#inFlight === 0 && this.#idleCallers.length > 0) {
        for (const resolve of this.#idleCallers.splice(0)) resolve();
      }
      // A call ended: the `call` event.
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
    if (error instanceof NodeDownError || error instanceof ConnectError) {
      return new RunnerDownError(`runner ${runner.id} (${runner.node}) went down during the ${what}: ${runner.reason ?? error.message}`, {
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
