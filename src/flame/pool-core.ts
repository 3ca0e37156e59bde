/**
 * The private core behind the public `Pool`: calls and placed actors, the pool's own state
 * (running, stopping, stopped) and its stop. Runners and their lifecycle belong to the
 * {@link RunnerSupervisor}; choosing a runner for a call to its {@link Placement}.
 */
import type { EventEmitter } from 'node:events';
import type { ClusterNode } from '../cluster/node.js';
import { NodeDownError, PoolStoppedError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CallTrace } from '../observability/diagnostics.js';
import type { Backend } from './backend.js';
import type { ShippedFunction } from './fn-ref.js';
import type { Lease } from './lease.js';
import type { ResolvedPoolOptions } from './options.js';
import { releaseParentNode } from './parent-node.js';
import { registerPool, unregisterPool, type PoolInternals } from './parent-services.js';
import { PoolCall, callError, type CallHost, type RunOptions } from './pool-call.js';
import type { PoolEvents, PoolState, PoolStatus } from './pool-types.js';
import { SERVICE, type IdleReply, type PlaceReply, type RunnerFault } from './protocol.js';
import type { RunnerHandle } from './runner-handle.js';
import { EXIT_REASON_GRACE, RunnerSupervisor } from './supervisor.js';

export type { RunOptions } from './pool-call.js';

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
  readonly #callHost: CallHost;

  /** Registers the pool on its node (throws InvalidOptionError for a duplicate name). */
  constructor(context: CoreContext) {
    this.name = context.o.name;
    this.#o = context.o;
    this.#c = context;
    this.#node = context.node;
    this.#events = context.events;
    this.#callHost = this.#makeCallHost();
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
   * allow, with backoff (see {@link PoolCall}).
   */
  run(shipped: ShippedFunction, args: unknown[], run: Readonly<RunOptions>, trace?: CallTrace): Promise<unknown> {
    return new Promise((resolve, reject) => {
      // Counted from the start, so stop() waits for a call that has not been placed yet.
      this.#inFlight++;
      new PoolCall(this.#callHost, shipped, args, run, trace, resolve, reject).start();
    });
  }

  /** What every call of this pool needs from it (one object for all of them). */
  #makeCallHost(): CallHost {
    return {
      node: this.#c.node,
      logger: this.#c.logger,
      events: this.#c.events,
      maxPayload: this.#o.maxPayload,
      running: () => this.#state === 'running',
      checkout: (deadline, signal) => this.#checkout(deadline, signal),
      checkin: (runner) => this.#supervisor!.placement.checkin(runner),
      ended: () => this.#ended(),
    };
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

  /** Places an actor from a shipped factory; its slot stays taken until the actor stops. */
  async place(shipped: ShippedFunction, args: unknown[], timeout: number, signal: AbortSignal | undefined, link: boolean, trace?: CallTrace): Promise<unknown> {
    const started = performance.now();
    const deadline = started + timeout;
    const runner = await this.#checkout(deadline, signal);
    const placedAt = performance.now();
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
      trace?.attempt(runner.id, runner.node, placedAt - started, performance.now() - placedAt);
    }
  }

  #checkout(deadline: number, signal: AbortSignal | undefined): RunnerHandle | Promise<RunnerHandle> {
    const stopped = this.refuseWhenStopped();
    if (stopped) return Promise.reject(stopped);
    return this.#supervisor!.placement.checkout(deadline, signal);
  }

  #callError(error: unknown, runner: RunnerHandle, timeout: number, deadline: number, signal: AbortSignal | undefined, what: string): Error {
    return callError(error, runner, this.#o.maxPayload, timeout, deadline, signal, what);
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
