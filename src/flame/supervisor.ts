/**
 * The runner lifecycle of one pool: boots, losses, idle stops, `min` upkeep and growth. It owns
 * the pool's runners; each runner's state changes only through the transition table of
 * `runner-handle.ts`, and only from here.
 *
 * Reports about runners (a boot ended, a node went down, a backend saw a process or pod end, the
 * boot backoff elapsed) arrive from socket listeners, child-process handlers and timers. They go
 * through a nact actor's mailbox, so each is handled to completion, in arrival order, outside the
 * reporter's stack (user hooks and event listeners never run inside a socket listener), and a bug
 * in handling one is logged and contained by the actor instead of thrown into a listener.
 * Placement does not go through it (see placement.ts and docs/design.md).
 */
import type { EventEmitter } from 'node:events';
import { dispatch, spawn, stop as stopActor, type Ref } from 'nact';
import type { ClusterNode } from '../cluster/node.js';
import { BootError } from '../errors.js';
import { backoffDelay, type BackoffPolicy } from '../backoff.js';
import type { Logger } from '../log.js';
import type { Backend } from './backend.js';
import type { PoolSizeInfo, ResolvedPoolOptions } from './options.js';
import { Placement } from './placement.js';
import type { PoolEvents } from './pool-types.js';
import { SERVICE, type IdleReply } from './protocol.js';
import { Provisioner } from './provision.js';
import { RunnerHandle } from './runner-handle.js';
import { publish, runnerDownChannel, runnerUpChannel, traceBoot } from '../observability/diagnostics.js';

/** After this many boots fail in a row, waiting callers that no ready runner can serve get the last boot error. */
const MAX_BOOT_FAILURES = 3;
/**
 * A runner's link usually drops a moment before its backend sees it exit and says why (the
 * process's fatal error, a pod's reason): a call cut by the drop waits this long for that reason.
 */
export const EXIT_REASON_GRACE = 300;
/** Backoff between failed boots. */
const BOOT_BACKOFF: BackoffPolicy = { baseMs: 200, maxMs: 5000 };

type SupervisorMsg =
  | { type: 'grow' }
  | { type: 'booted'; runner: RunnerHandle; node: string; done(): void }
  | { type: 'bootFailed'; runner: RunnerHandle; error: Error }
  | { type: 'lost'; runner: RunnerHandle; reason: string; expected: boolean };

let nextActor = 1;

export interface SupervisorContext {
  readonly o: ResolvedPoolOptions;
  readonly backend: Backend;
  readonly node: ClusterNode;
  readonly logger: Logger;
  readonly events: EventEmitter<PoolEvents>;
  /** True while the pool takes work (not stopping or stopped). */
  running(): boolean;
}

export class RunnerSupervisor {
  readonly placement: Placement;
  readonly #c: SupervisorContext;
  readonly #o: ResolvedPoolOptions;
  readonly #provisioner: Provisioner;
  readonly #runners = new Map<string, RunnerHandle>();
  /** Runners just forgotten, still told why they exited when their backend reports it late. */
  readonly #departed = new Map<string, RunnerHandle>();
  readonly #byNode = new Map<string, RunnerHandle>();
  readonly #boots = new Set<Promise<unknown>>();
  readonly #actor: Ref<SupervisorMsg>;
  #bootFailures = 0;
  #lastBootError: Error | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #runnerSeq = 0;
  readonly #onNodeDown = (node: string, reason: Error) => {
    const runner = this.#byNode.get(node);
    if (runner) this.runnerDown(runner, reason.message);
  };

  constructor(context: SupervisorContext) {
    this.#c = context;
    this.#o = context.o;
    this.#provisioner = new Provisioner(context.o, context.backend, context.node);
    this.placement = new Placement({
      name: this.#o.name,
      max: this.#o.max,
      maxConcurrency: this.#o.maxConcurrency,
      maxQueue: this.#o.maxQueue,
      runners: () => this.#runners.values(),
      existingCount: () => this.#runners.size,
      taken: (runner) => {
        // Its one call is this one: no other caller may get it.
        if (this.#o.singleUse) runner.fire('drain', 'single use');
      },
      grow: () => this.#grow(),
    });
    this.#actor = spawn(context.node.system, (_state: undefined, msg: SupervisorMsg) => {
      this.#handle(msg);
      return undefined;
    }, `pool-${this.#o.name}-${nextActor++}`, { onCrash: (_m, error, ctx) => {
      context.logger.error(`pool supervisor error (resumed): ${(error as Error)?.message}`);
      return ctx.resume;
    } });
    context.node.on('nodedown', this.#onNodeDown);
  }

  runners(): IterableIterator<RunnerHandle> {
    return this.#runners.values();
  }

  hasRunner(runnerId: string): boolean {
    return this.#runners.has(runnerId);
  }

  /** Boots `count` runners; resolves once all are ready, or rejects with the first boot error. */
  async bootMin(count: number): Promise<void> {
    const results = await Promise.allSettled(Array.from({ length: count }, () => this.#boot()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** A runner announced itself (SERVICE.ready). */
  connected(runnerId: string, node: string): boolean {
    return this.#provisioner.connected(runnerId, node);
  }

  /** The backend saw runner `runnerId` end (BackendContext.runnerExited). */
  runnerExited(runnerId: string, reason: string): void {
    this.#c.logger.debug(`runner ${runnerId} ended (reported by the backend): ${reason}`);
    const runner = this.#runners.get(runnerId) ?? this.#departed.get(runnerId);
    if (!runner) return;
    runner.exited(reason);
    if (runner.state === 'booting') this.#provisioner.ended(runnerId, reason);
    else this.runnerDown(runner, reason);
  }

  /** Its node went down or it ended: out of placement at once; the actor does the rest in turn. */
  runnerDown(runner: RunnerHandle, reason: string): void {
    const expected = runner.state === 'draining';
    if (runner.fire('down', reason)) dispatch(this.#actor, { type: 'lost', runner, reason, expected });
  }

  /** A runner asks whether it may stop for idleness (SERVICE.idle): the pool owns the counts. */
  idle(runnerId: string): IdleReply {
    const runner = this.#runners.get(runnerId);
    if (!runner || runner.state !== 'ready') return { stop: runner?.state === 'draining' };
    const idleFor = performance.now() - runner.idleSince;
    let readyCount = 0;
    for (const r of this.#runners.values()) if (r.state === 'ready') readyCount++;
    const aboveMin = readyCount > this.#o.min;
    const stop = runner.load === 0 && this.placement.waiting === 0 && (aboveMin || idleFor >= this.#o.minIdleShutdownAfter);
    if (stop) {
      runner.fire('drain', 'idle');
      // A recycled min runner is replaced at once.
      queueMicrotask(() => this.#grow());
    }
    return { stop };
  }

  /** A placed actor stopped (SERVICE.childExit): its slot is free. */
  childExited(runnerId: string, child: number): void {
    const runner = this.#runners.get(runnerId);
    if (runner?.placed.delete(child)) this.placement.checkin(runner);
  }

  /** Ends the lifecycle: boots under way end, every runner drains and stops, the actor stops. */
  async stop(): Promise<void> {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    // Boots under way end (ready or failed, bounded by bootTimeout) before everything is retired.
    await Promise.allSettled([...this.#boots]);
    await Promise.all([...this.#runners.values()].map((r) => this.#retire(r, 'pool stopped')));
    this.#c.node.off('nodedown', this.#onNodeDown);
    try {
      stopActor(this.#actor);
    } catch {
      // already stopped
    }
  }

  /** Runners booting or ready (draining ones are on their way out). */
  liveCount(): number {
    let n = 0;
    for (const r of this.#runners.values()) if (r.state === 'booting' || r.state === 'ready') n++;
    return n;
  }

  #bootingCount(): number {
    let n = 0;
    for (const r of this.#runners.values()) if (r.state === 'booting') n++;
    return n;
  }

  #hasReadyRunner(): boolean {
    for (const r of this.#runners.values()) if (r.placeable) return true;
    return false;
  }

  /**
   * Boots runners while callers wait for more slots than the booting runners will bring
   * (FLAME's rule, re-run after every boot result, checkin and loss), within `max`, and keeps
   * `min`. No boots while a failure backoff runs.
   */
  #grow(): void {
    if (!this.#c.running() || this.#retryTimer) return;
    while (this.#runners.size < this.#o.max) {
      const needed = this.placement.waiting > this.#bootingCount() * this.#o.maxConcurrency || this.liveCount() < this.#o.min;
      if (!needed) break;
      this.#boot().catch(() => {});
    }
  }

  /** Boots one runner; resolves when the supervisor made it ready, rejects with BootError/BootTimeoutError. */
  #boot(): Promise<RunnerHandle> {
    const seq = ++this.#runnerSeq;
    const runner = new RunnerHandle(`${this.#o.name}-${seq}`, seq, this.#c.logger);
    this.#runners.set(runner.id, runner);
    // A boot starts.
    this.#hook('onGrowStart', () => this.#o.onGrowStart?.(this.#sizeInfo(runner)));
    const boot = traceBoot(this.#o.name, runner.id, this.#c.backend.name, () => this.#provisioner.provision(runner).then(
      (node) => new Promise<RunnerHandle>((resolve) => {
        dispatch(this.#actor, { type: 'booted', runner, node, done: () => resolve(runner) });
      }),
      (error: Error) => {
        dispatch(this.#actor, { type: 'bootFailed', runner, error });
        throw error;
      },
    ), (r) => r.node);
    this.#boots.add(boot);
    void boot.catch(() => {}).finally(() => this.#boots.delete(boot));
    return boot;
  }

  // ---------------------------------------------------------------- the actor's handlers

  #handle(msg: SupervisorMsg): void {
    switch (msg.type) {
      case 'grow':
        this.#retryTimer = undefined;
        this.#grow();
        return;
      case 'booted':
        try {
          this.#booted(msg.runner, msg.node);
        } finally {
          msg.done();
        }
        return;
      case 'bootFailed':
        this.#bootFailed(msg.runner, msg.error);
        return;
      case 'lost':
        this.#lost(msg.runner, msg.reason, msg.expected);
        return;
    }
  }

  #booted(runner: RunnerHandle, node: string): void {
    runner.node = node;
    if (!runner.fire('connected')) return;
    runner.idleSince = performance.now();
    this.#byNode.set(node, runner);
    this.#bootFailures = 0;
    const ms = performance.now() - runner.bootStartedAt;
    // A boot ended: the runner is up.
    this.#c.logger.info(`runner ${runner.id} up on ${node} in ${Math.round(ms)} ms`, { runner: runner.id, node });
    this.#hook('onGrowEnd', () => this.#o.onGrowEnd?.(undefined, this.#sizeInfo(runner)));
    this.#c.events.emit('runnerUp', runner.status(), ms);
    publish(runnerUpChannel, () => ({ pool: this.#o.name, runner: runner.id, node, bootMs: ms }));
    if (!this.#c.running()) return; // stop() retires it
    this.placement.serveWaiters();
    this.#grow();
  }

  #bootFailed(runner: RunnerHandle, error: Error): void {
    if (!runner.fire('bootFailed', error.message)) return;
    this.#runners.delete(runner.id);
    this.#bootFailures++;
    this.#lastBootError = error;
    // A boot ended: it failed.
    this.#c.logger.warn(`runner ${runner.id} failed to boot: ${error.message}`, { runner: runner.id });
    this.#hook('onGrowEnd', () => this.#o.onGrowEnd?.(error, this.#sizeInfo(runner)));
    if (this.#c.events.listenerCount('bootFailed') > 0) this.#c.events.emit('bootFailed', error);
    if (!this.#c.running()) return;
    this.#failWaitersIfHopeless();
    if (this.placement.waiting > 0 || this.liveCount() < this.#o.min) {
      const delay = backoffDelay(BOOT_BACKOFF, this.#bootFailures);
      this.#retryTimer = setTimeout(() => dispatch(this.#actor, { type: 'grow' }), delay);
      this.#retryTimer.unref();
    }
  }

  #lost(runner: RunnerHandle, reason: string, expected: boolean): void {
    if (!this.#forget(runner, reason)) return;
    (expected ? this.#c.logger.info : this.#c.logger.warn)(`runner ${runner.id} gone: ${runner.reason}`, { runner: runner.id });
    if (runner.instance) void this.#c.backend.shutdown(runner.instance).catch((e: Error) => this.#c.logger.warn(`backend shutdown of ${runner.id}: ${e.message}`));
    if (!this.#c.running()) return;
    this.#failWaitersIfHopeless();
    this.#grow();
  }

  /**
   * After repeated boot failures, waiting callers are told why instead of waiting for boots that
   * keep failing, but only when no ready runner exists: a busy healthy runner will serve them
   * when a slot frees (or their own deadline tells them the pool is at capacity).
   */
  #failWaitersIfHopeless(): void {
    if (this.#bootFailures < MAX_BOOT_FAILURES || this.#hasReadyRunner() || this.placement.waiting === 0) return;
    const last = this.#lastBootError;
    const failure = new BootError(`${this.#bootFailures} runner boots failed in a row and no runner is ready; the last one: ${last?.message}`, { cause: last });
    this.placement.failWaiters(failure);
    this.#bootFailures = 0;
  }

  /** Removes a runner that is down or done draining; false when it was already forgotten. */
  #forget(runner: RunnerHandle, reason: string): boolean {
    if (!runner.fire('gone', reason)) return false;
    this.#runners.delete(runner.id);
    this.#departed.set(runner.id, runner);
    setTimeout(() => this.#departed.delete(runner.id), EXIT_REASON_GRACE).unref();
    if (runner.node) this.#byNode.delete(runner.node);
    runner.placed.clear();
    this.#hook('onShrink', () => this.#o.onShrink?.({ ...this.#sizeInfo(runner), reason: runner.reason ?? reason }));
    this.#c.events.emit('runnerDown', runner.status(), runner.reason ?? reason);
    publish(runnerDownChannel, () => ({ pool: this.#o.name, runner: runner.id, node: runner.node, reason: runner.reason ?? reason }));
    return true;
  }

  /** Drains a runner (its in-flight work gets `shutdownTimeout`) and stops it. */
  async #retire(runner: RunnerHandle, reason: string): Promise<void> {
    // A boot still being reported is handled by its bootFailed/booted message; a stopped one is done.
    if (runner.state === 'booting' || runner.state === 'stopped') return;
    runner.fire('drain', reason);
    const { node } = this.#c;
    if (runner.state === 'draining' && runner.node && node.isConnected(runner.node)) {
      await node.request(runner.node, SERVICE.shutdown, { reason }, { timeout: 5000 }).catch(() => {});
      // It drains, then its node goes down; past its drain time the backend stops it anyway.
      await new Promise<void>((resolve) => {
        const stopMonitoring = node.monitor(runner.node!, () => {
          clearTimeout(timer);
          resolve();
        });
        const timer = setTimeout(() => {
          stopMonitoring();
          resolve();
        }, this.#o.shutdownTimeout + 1000);
      });
    }
    this.#forget(runner, reason);
    if (runner.instance) await this.#c.backend.shutdown(runner.instance).catch((e: Error) => this.#c.logger.warn(`backend shutdown of ${runner.id}: ${e.message}`));
  }

  #sizeInfo(runner: RunnerHandle): PoolSizeInfo {
    return { pool: this.#o.name, count: this.liveCount(), runner: runner.id };
  }

  /** User hooks never take the pool down (FLAME's on_grow_end can crash its pool). */
  #hook(name: string, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.#c.logger.error(`${name} hook threw (ignored): ${(error as Error).message}`);
    }
  }
}
