/**
 * A pool of ephemeral runners: FLAME.Pool for Node. Calls go to the least-loaded runner with a
 * free slot; the pool grows towards `max` while callers wait, keeps `min` runners warm and lets
 * idle ones go. Runner lifecycle (boots, losses, idle stops, min upkeep) is serialised through a
 * nact supervisor actor; placing a call is plain synchronous code, because it is on every
 * call's path and nact handles one message per loop turn (library-traps §1).
 */
import { EventEmitter } from 'node:events';
import { dispatch, spawn, stop as stopActor, type Ref } from 'nact';
import type { ClusterNode } from '../cluster/node.js';
import {
  AbortError,
  BootError,
  BootTimeoutError,
  CallTimeoutError,
  CheckoutTimeoutError,
  ConnectError,
  FlameError,
  InvalidOptionError,
  NodeDownError,
  PoolOverloadedError,
  PoolStoppedError,
  QueryTimeoutError,
  RunnerDownError,
} from '../errors.js';
import { onAbort } from '../abort.js';
import { backoffDelay, type BackoffPolicy } from '../backoff.js';
import { createLogger, type Logger } from '../log.js';
import { resolveDefaultBackend, type Backend } from './backend.js';
import { shipFunction, type AnyFunction, type FnArgs, type FnResult, type ModuleRef, type ShippedFunction } from './fn-ref.js';
import {
  resolveCallOptions,
  resolvePoolOptions,
  type CallOptions,
  type PlaceOptions,
  type PoolOptions,
  type PoolSizeInfo,
  type ResolvedPoolOptions,
} from './options.js';
import { encodeParent, PARENT_ENV } from './parent.js';
import { acquireParentNode, releaseParentNode } from './parent-node.js';
import { checkNactPeer } from './nact-peer.js';
import { SERVICE, type IdleReply, type PlaceReply, type RunnerFault } from './protocol.js';
import { installParentServices } from './parent-services.js';
import { RunnerHandle, type RunnerStatus } from './runner-handle.js';

/** `pool.status()`: what a person watching the pool wants to see. */
export interface PoolStatus {
  name: string;
  state: 'running' | 'stopping' | 'stopped';
  runners: RunnerStatus[];
  /** Callers waiting for a free slot. */
  queued: number;
  min: number;
  max: number;
  maxConcurrency: number;
}

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

/** After this many boots fail in a row, waiting callers get the last boot error. */
const MAX_BOOT_FAILURES = 3;
/**
 * A runner's link usually drops a moment before its backend sees it exit and says why (the
 * process's fatal error, a pod's reason): a call cut by the drop waits this long for that reason.
 */
const EXIT_REASON_GRACE = 300;
/** Backoff between failed boots. */
const BOOT_BACKOFF: BackoffPolicy = { baseMs: 200, maxMs: 5000 };

interface Waiter {
  resolve(runner: RunnerHandle): void;
  reject(error: Error): void;
  settled: boolean;
}

type SupervisorMsg =
  | { type: 'grow' }
  | { type: 'booted'; runner: RunnerHandle; node: string }
  | { type: 'bootFailed'; runner: RunnerHandle; error: Error }
  | { type: 'lost'; runner: RunnerHandle; reason: string };

/** Pools by name on each parent node: runners announce themselves to the node, not the pool. */
const poolsByNode = new WeakMap<ClusterNode, Map<string, Pool>>();

let nextPoolRunner = 1;

export class Pool extends EventEmitter<PoolEvents> {
  readonly name: string;
  readonly #o: ResolvedPoolOptions;
  readonly #backend: Backend;
  readonly #node: ClusterNode;
  readonly #ownsNode: boolean;
  readonly #logger: Logger;
  readonly #runners = new Map<string, RunnerHandle>();
  readonly #byNode = new Map<string, RunnerHandle>();
  readonly #ready = new Map<string, { resolve(node: string): void; reject(error: Error): void }>();
  readonly #boots = new Set<Promise<unknown>>();
  /** Runners just forgotten, still told why they exited when their backend reports it late. */
  readonly #departed = new Map<string, RunnerHandle>();
  #waiters: Waiter[] = [];
  #waiting = 0;
  #supervisor!: Ref<SupervisorMsg>;
  #state: 'running' | 'stopping' | 'stopped' = 'running';
  #inFlight = 0;
  #idleCallers: (() => void)[] = [];
  #bootFailures = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #runnerSeq = 0;
  #stopPromise: Promise<void> | undefined;
  readonly #onNodeDown = (node: string, reason: Error) => {
    const runner = this.#byNode.get(node);
    if (!runner) return;
    // Out of placement at once; the supervisor does the rest in turn.
    runner.lost = true;
    dispatch(this.#supervisor, { type: 'lost', runner, reason: reason.message });
  };

  private constructor(o: ResolvedPoolOptions, backend: Backend, node: ClusterNode, ownsNode: boolean) {
    super();
    this.name = o.name;
    this.#o = o;
    this.#backend = backend;
    this.#node = node;
    this.#ownsNode = ownsNode;
    this.#logger = createLogger(o.log, `[pool ${o.name}]`, o.logSink);
  }

  /**
   * Starts a pool: validates options, initialises the backend once, and boots `min` runners
   * (resolving once they are ready, or rejecting with the boot error).
   */
  static async start(options: PoolOptions): Promise<Pool> {
    const o = resolvePoolOptions(options);
    checkNactPeer();
    const node = o.node ?? (await acquireParentNode(o.log, o.logSink));
    const ownsNode = o.node === undefined;
    let pools = poolsByNode.get(node);
    if (!pools) {
      pools = new Map();
      poolsByNode.set(node, pools);
      installParentServices(node, pools);
    }
    if (pools.has(o.name)) {
      if (ownsNode) await releaseParentNode(node);
      throw new InvalidOptionError(`Pool.start: a pool named "${o.name}" is already running on ${node.name}; give each pool its own name`);
    }
    const backend = o.backend ?? (await resolveDefaultBackend());
    const pool = new Pool(o, backend, node, ownsNode);
    pools.set(o.name, pool);
    try {
      await backend.init({
        pool: o.name,
        node,
        logger: pool.#logger,
        runnerExited: (id, reason) => {
          const runner = pool.#runners.get(id) ?? pool.#departed.get(id);
          if (!runner) return;
          runner.exited(reason);
          dispatch(pool.#supervisor, { type: 'lost', runner, reason });
        },
      });
    } catch (error) {
      pools.delete(o.name);
      if (ownsNode) await releaseParentNode(node);
      throw error instanceof FlameError ? error : new BootError(`backend ${backend.name} failed to initialise: ${(error as Error).message}`, { cause: error });
    }
    pool.#supervisor = spawn(node.system, (_s: undefined, msg: SupervisorMsg) => {
      pool.#supervise(msg);
      return undefined;
    }, `pool-${o.name}-${nextPoolRunner++}`, { onCrash: (_m, error, ctx) => {
      pool.#logger.error(`pool supervisor error (resumed): ${(error as Error)?.message}`);
      return ctx.resume;
    } });
    node.on('nodedown', pool.#onNodeDown);
    if (o.min > 0) {
      const boots = Array.from({ length: o.min }, () => pool.#boot());
      const results = await Promise.allSettled(boots);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        await pool.stop();
        throw failed.reason;
      }
    }
    pool.#logger.info(`started with backend ${backend.name} (min ${o.min}, max ${o.max}, maxConcurrency ${o.maxConcurrency})`);
    return pool;
  }

  // ---------------------------------------------------------------- public API

  /**
   * Runs `fn(...args)` on a runner and resolves to its result. `fn` is a closure (shipped as its
   * source: it may use only its parameters, globals and `await import()`) or a `moduleRef`.
   * One deadline (`timeout`) covers waiting for capacity and running.
   */
  async call<F extends AnyFunction | ModuleRef>(fn: F, args: FnArgs<F> = [] as unknown as FnArgs<F>, options?: CallOptions): Promise<FnResult<F>> {
    const { timeout, signal } = resolveCallOptions('pool.call', options, this.#o.timeout);
    const shipped = shipFunction(fn as AnyFunction | ModuleRef);
    return (await this.#run(shipped, args as unknown[], timeout, signal)) as FnResult<F>;
  }

  /**
   * Runs `fn(...args)` on a runner without waiting for the result. It queues like a call (and
   * fails with PoolOverloadedError past `maxQueue`); errors are emitted as `castError`.
   */
  cast<F extends AnyFunction | ModuleRef>(fn: F, args: FnArgs<F> = [] as unknown as FnArgs<F>, options?: CallOptions): void {
    const { timeout, signal } = resolveCallOptions('pool.cast', options ?? { timeout: Infinity }, Infinity);
    const shipped = shipFunction(fn as AnyFunction | ModuleRef);
    this.#run(shipped, args as unknown[], timeout, signal).catch((error: Error) => {
      this.#logger.warn(`cast failed: ${error.message}`);
      if (this.listenerCount('castError') > 0) this.emit('castError', error);
    });
  }

  /**
   * Spawns a long-lived actor on a runner: `factory(parentRef, ...args)` must spawn it under
   * `parentRef` with nact and return its ref. The ref works with nact's own `dispatch`, `query`
   * and `stop`. The actor holds one slot of its runner (keeping it alive) until it stops; with
   * `link` (default) it stops when this node goes down.
   */
  async placeChild<Msg = unknown, F extends AnyFunction | ModuleRef = AnyFunction | ModuleRef>(factory: F, args: unknown[] = [], options?: PlaceOptions): Promise<Ref<Msg>> {
    const { timeout, signal, link } = resolveCallOptions('pool.placeChild', options, this.#o.timeout, true);
    const shipped = shipFunction(factory as AnyFunction | ModuleRef);
    const deadline = performance.now() + timeout;
    const runner = await this.#checkout(deadline, signal);
    let placed = false;
    try {
      const remaining = deadline - performance.now();
      const reply = (await this.#node.request(runner.node!, SERVICE.place, {
        fn: shipped, args, timeout: -1, link, caller: this.#node.name,
      }, { timeout: remaining, signal })) as PlaceReply;
      runner.placed.add(reply.child);
      placed = true;
      return reply.ref as Ref<Msg>;
    } catch (error) {
      if (error instanceof NodeDownError) await runner.exitReason(EXIT_REASON_GRACE);
      throw this.#callError(error, runner, timeout, 'placeChild');
    } finally {
      // The slot stays taken by the placed actor; it is freed when the runner reports its exit.
      if (!placed) this.#checkin(runner);
    }
  }

  /** The runners with their state and load, and the callers waiting. */
  status(): PoolStatus {
    return {
      name: this.name,
      state: this.#state,
      runners: [...this.#runners.values()].map((r) => r.status()),
      queued: this.#waiting,
      min: this.#o.min,
      max: this.#o.max,
      maxConcurrency: this.#o.maxConcurrency,
    };
  }

  /**
   * Drains and stops: new calls are refused, waiting callers fail with PoolStoppedError,
   * in-flight calls get `shutdownTimeout` to finish, then every runner stops and the backend
   * releases everything. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopPromise ??= this.#stop();
    return this.#stopPromise;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  // ---------------------------------------------------------------- calls

  async #run(shipped: ShippedFunction, args: unknown[], timeout: number, signal: AbortSignal | undefined): Promise<unknown> {
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
      if (runner && error instanceof NodeDownError) await runner.exitReason(EXIT_REASON_GRACE);
      failure = runner ? this.#callError(error, runner, timeout, 'call') : (error as Error);
      throw failure;
    } finally {
      this.#inFlight--;
      if (runner) this.#checkin(runner);
      if (this.#inFlight === 0 && this.#idleCallers.length > 0) {
        for (const resolve of this.#idleCallers.splice(0)) resolve();
      }
      if (this.listenerCount('call') > 0) {
        this.emit('call', { runner: runner?.id, waitMs: placedAt - started, runMs: performance.now() - placedAt, error: failure });
      }
    }
  }

  #callError(error: unknown, runner: RunnerHandle, timeout: number, what: string): Error {
    if (error instanceof QueryTimeoutError) {
      return new CallTimeoutError(`${what} did not finish within its timeout of ${timeout} ms on runner ${runner.id}; the remote work was cancelled`, {
        details: { runner: runner.id, timeout },
      });
    }
    if (error instanceof NodeDownError || error instanceof ConnectError) {
      return new RunnerDownError(`runner ${runner.id} (${runner.node}) went down during the ${what}: ${runner.exitedBecause ?? runner.reason ?? error.message}`, {
        cause: error,
        details: { runner: runner.id, node: runner.node },
      });
    }
    return error as Error;
  }

  // ---------------------------------------------------------------- placement (synchronous)

  /** A free slot on the least-loaded ready runner, or a wait in FIFO order (growing the pool). */
  #checkout(deadline: number, signal: AbortSignal | undefined): RunnerHandle | Promise<RunnerHandle> {
    if (this.#state !== 'running') return Promise.reject(new PoolStoppedError(`pool ${this.name} is ${this.#state} and takes no new work`));
    if (signal?.aborted) return Promise.reject(new AbortError('aborted before a runner was assigned', { cause: signal.reason }));
    const runner = this.#pick();
    if (runner) return this.#take(runner);
    if (this.#waiting >= this.#o.maxQueue) {
      return Promise.reject(new PoolOverloadedError(`pool ${this.name} has ${this.#waiting} callers waiting (maxQueue ${this.#o.maxQueue}); try again later`));
    }
    return new Promise<RunnerHandle>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let unsubscribe: (() => void) | undefined;
      const waiter: Waiter = {
        settled: false,
        resolve: (r) => finish(() => resolve(r)),
        reject: (e) => finish(() => reject(e)),
      };
      const finish = (then: () => void) => {
        if (waiter.settled) return;
        waiter.settled = true;
        this.#waiting--;
        if (timer) clearTimeout(timer);
        unsubscribe?.();
        then();
      };
      const wait = deadline - performance.now();
      if (wait !== Infinity) {
        timer = setTimeout(() => waiter.reject(this.#checkoutTimeout(wait)), Math.max(0, wait));
      }
      if (signal) unsubscribe = onAbort(signal, () => waiter.reject(new AbortError('aborted while waiting for a runner', { cause: signal.reason })));
      this.#waiters.push(waiter);
      this.#waiting++;
      this.#grow();
    });
  }

  #checkoutTimeout(waited: number): Error {
    const live = this.#existingCount();
    const atMax = live >= this.#o.max;
    return new CheckoutTimeoutError(
      atMax
        ? `no runner had a free slot within ${Math.round(waited)} ms: pool ${this.name} is at max (${this.#o.max} runners x ${this.#o.maxConcurrency} slots, all busy); raise max or maxConcurrency, or the timeout`
        : `no runner became ready within ${Math.round(waited)} ms (pool ${this.name} has ${live} of max ${this.#o.max} runners, some still booting); raise the call's timeout above the boot time`,
      { details: { atMax, max: this.#o.max, queued: this.#waiting } },
    );
  }

  #pick(): RunnerHandle | undefined {
    let best: RunnerHandle | undefined;
    for (const r of this.#runners.values()) {
      if (r.state !== 'ready' || r.lost || r.load >= this.#o.maxConcurrency) continue;
      if (!best || r.load < best.load || (r.load === best.load && r.seq < best.seq)) best = r;
    }
    return best;
  }

  #take(runner: RunnerHandle): RunnerHandle {
    runner.load++;
    if (this.#o.singleUse) {
      // Its one call is this one: no other caller may get it.
      runner.state = 'draining';
      runner.reason = 'single use';
    }
    return runner;
  }

  #checkin(runner: RunnerHandle): void {
    if (runner.load > 0) runner.load--;
    if (runner.load === 0) runner.idleSince = performance.now();
    this.#serveWaiters();
  }

  #serveWaiters(): void {
    while (this.#waiters.length > 0) {
      const waiter = this.#waiters[0]!;
      if (waiter.settled) {
        this.#waiters.shift();
        continue;
      }
      const runner = this.#pick();
      if (!runner) break;
      this.#waiters.shift();
      waiter.resolve(this.#take(runner));
    }
    if (this.#waiters.length > 64 && this.#waiting < this.#waiters.length / 2) {
      this.#waiters = this.#waiters.filter((w) => !w.settled);
    }
  }

  /** Runners booting or ready (draining ones are on their way out). */
  #liveCount(): number {
    let n = 0;
    for (const r of this.#runners.values()) if (r.state === 'booting' || r.state === 'ready') n++;
    return n;
  }

  /** Runners that exist, draining ones included: what `max` bounds. */
  #existingCount(): number {
    return this.#runners.size;
  }

  #bootingCount(): number {
    let n = 0;
    for (const r of this.#runners.values()) if (r.state === 'booting') n++;
    return n;
  }

  /**
   * Boots runners while callers wait for more slots than the booting runners will bring
   * (FLAME's rule, re-run after every boot result, checkin and loss), within `max`, and keeps
   * `min`. No boots while a failure backoff runs.
   */
  #grow(): void {
    if (this.#state !== 'running' || this.#retryTimer) return;
    while (this.#existingCount() < this.#o.max) {
      const needed = this.#waiting > this.#bootingCount() * this.#o.maxConcurrency || this.#liveCount() < this.#o.min;
      if (!needed) break;
      this.#boot().catch(() => {});
    }
  }

  // ---------------------------------------------------------------- lifecycle (the supervisor actor)

  #supervise(msg: SupervisorMsg): void {
    switch (msg.type) {
      case 'grow':
        this.#retryTimer = undefined;
        this.#grow();
        return;
      case 'booted': {
        const { runner } = msg;
        runner.onSupervised?.();
        if (runner.state !== 'booting') return;
        runner.state = 'ready';
        runner.node = msg.node;
        runner.idleSince = performance.now();
        this.#byNode.set(msg.node, runner);
        this.#bootFailures = 0;
        const ms = performance.now() - runner.bootStartedAt;
        this.#logger.info(`runner ${runner.id} up on ${msg.node} in ${Math.round(ms)} ms`);
        this.#hook('onGrowEnd', () => this.#o.onGrowEnd?.(undefined, this.#sizeInfo(runner)));
        this.emit('runnerUp', runner.status(), ms);
        if (this.#state !== 'running') return; // stop() retires it
        this.#serveWaiters();
        this.#grow();
        return;
      }
      case 'bootFailed': {
        const { runner, error } = msg;
        this.#forget(runner, error.message);
        this.#bootFailures++;
        this.#logger.warn(`runner ${runner.id} failed to boot: ${error.message}`);
        this.#hook('onGrowEnd', () => this.#o.onGrowEnd?.(error, this.#sizeInfo(runner)));
        if (this.listenerCount('bootFailed') > 0) this.emit('bootFailed', error);
        if (this.#state !== 'running') return;
        if (this.#bootFailures >= MAX_BOOT_FAILURES && this.#pick() === undefined) {
          // Nothing can serve the waiting callers: tell them why instead of retrying forever.
          const failure = new BootError(`${this.#bootFailures} runner boots failed in a row; the last one: ${error.message}`, { cause: error });
          for (const waiter of this.#waiters.splice(0)) waiter.reject(failure);
          this.#bootFailures = 0;
        }
        if (this.#waiting > 0 || this.#liveCount() < this.#o.min) {
          const delay = backoffDelay(BOOT_BACKOFF, this.#bootFailures);
          this.#retryTimer = setTimeout(() => dispatch(this.#supervisor, { type: 'grow' }), delay);
          this.#retryTimer.unref();
        }
        return;
      }
      case 'lost': {
        const { runner, reason } = msg;
        if (runner.state === 'stopped') return;
        if (runner.state === 'booting') {
          // A backend saw it die before it connected: fail the boot now rather than at its deadline.
          this.#ready.get(runner.id)?.reject(new BootError(`runner ${runner.id} ended before it connected: ${reason}`));
          return;
        }
        const expected = runner.state === 'draining';
        runner.reason ??= reason;
        this.#forget(runner, reason);
        (expected ? this.#logger.info : this.#logger.warn)(`runner ${runner.id} gone: ${runner.reason}`);
        if (runner.instance) void this.#backend.shutdown(runner.instance).catch((e: Error) => this.#logger.warn(`backend shutdown of ${runner.id}: ${e.message}`));
        this.#grow();
        return;
      }
    }
  }

  /** Boots one runner; resolves when it is ready, rejects with BootError/BootTimeoutError. */
  #boot(): Promise<RunnerHandle> {
    const id = `${this.name}-${++this.#runnerSeq}`;
    const runner = new RunnerHandle(id, this.#runnerSeq);
    this.#runners.set(id, runner);
    this.#hook('onGrowStart', () => this.#o.onGrowStart?.(this.#sizeInfo(runner)));
    const boot = this.#provision(runner).then(
      (node) => {
        runner.node = node;
        // Resolves once the supervisor has made it ready, so `Pool.start` returns with warm runners.
        const settled = new Promise<RunnerHandle>((resolve) => (runner.onSupervised = () => resolve(runner)));
        dispatch(this.#supervisor, { type: 'booted', runner, node });
        return settled;
      },
      (error: Error) => {
        dispatch(this.#supervisor, { type: 'bootFailed', runner, error });
        throw error;
      },
    );
    this.#boots.add(boot);
    void boot.catch(() => {}).finally(() => this.#boots.delete(boot));
    return boot;
  }

  async #provision(runner: RunnerHandle): Promise<string> {
    const controller = new AbortController();
    const timeout = this.#o.bootTimeout;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new BootTimeoutError(`runner ${runner.id} did not boot and connect back within bootTimeout (${timeout} ms)${runner.instance ? ` (${runner.instance.description})` : ''}`);
        controller.abort(error);
        reject(error);
      }, timeout);
    });
    expired.catch(() => {});
    const connected = new Promise<string>((resolve, reject) => this.#ready.set(runner.id, { resolve, reject }));
    connected.catch(() => {});
    try {
      const token = encodeParent({
        parent: this.#node.name,
        runner: runner.id,
        pool: this.name,
        backend: this.#backend.name,
        idleShutdownAfter: this.#o.idleShutdownAfter,
        shutdownTimeout: this.#o.shutdownTimeout,
        failsafeTimeout: this.#o.failsafeTimeout,
        bootTimeout: this.#o.bootTimeout,
        singleUse: this.#o.singleUse,
        log: this.#o.log,
      });
      runner.instance = await Promise.race([
        this.#backend.boot({ id: runner.id, env: { [PARENT_ENV]: token, FLAME_COOKIE: this.#node.cookie }, shutdownTimeout: this.#o.shutdownTimeout }, controller.signal),
        expired,
      ]);
      return await Promise.race([connected, expired]);
    } catch (error) {
      if (runner.instance) await this.#backend.shutdown(runner.instance).catch(() => {});
      if (error instanceof BootError || error instanceof BootTimeoutError) throw error;
      throw new BootError(`runner ${runner.id} failed to boot on backend ${this.#backend.name}: ${(error as Error).message}`, { cause: error });
    } finally {
      clearTimeout(timer);
      this.#ready.delete(runner.id);
    }
  }

  hasRunner(runnerId: string): boolean {
    return this.#runners.has(runnerId);
  }

  /** A runner announced itself (SERVICE.ready). */
  onReady(runnerId: string, node: string): boolean {
    const pending = this.#ready.get(runnerId);
    if (!pending) return false;
    pending.resolve(node);
    return true;
  }

  /** A runner asks whether it may stop for idleness (SERVICE.idle): the pool owns the counts. */
  onIdle(runnerId: string): IdleReply {
    const runner = this.#runners.get(runnerId);
    if (!runner || runner.state !== 'ready') return { stop: runner?.state === 'draining' };
    const idleFor = performance.now() - runner.idleSince;
    const readyCount = [...this.#runners.values()].filter((r) => r.state === 'ready').length;
    const aboveMin = readyCount > this.#o.min;
    const stop = runner.load === 0 && this.#waiting === 0 && (aboveMin || idleFor >= this.#o.minIdleShutdownAfter);
    if (stop) {
      runner.state = 'draining';
      runner.reason = 'idle';
      // A recycled min runner is replaced at once.
      queueMicrotask(() => this.#grow());
    }
    return { stop };
  }

  /** Shipped work left an error unhandled on a runner (SERVICE.fault). */
  onRunnerError(runnerId: string, fault: RunnerFault): void {
    this.#logger.warn(`runner ${runnerId}: ${fault.kind}${fault.origin ? ` in ${fault.origin}` : ''}${fault.failedCall ? ' (its call failed with it)' : ''}: ${fault.stack ?? `${fault.name}: ${fault.message}`}`);
    if (this.listenerCount('runnerError') > 0) this.emit('runnerError', { runner: runnerId, ...fault });
  }

  /** A placed actor stopped (SERVICE.childExit): its slot is free. */
  onChildExit(runnerId: string, child: number): void {
    const runner = this.#runners.get(runnerId);
    if (runner?.placed.delete(child)) this.#checkin(runner);
  }

  #forget(runner: RunnerHandle, reason: string): void {
    const wasUp = runner.state !== 'booting';
    runner.state = 'stopped';
    runner.reason ??= reason;
    this.#runners.delete(runner.id);
    this.#departed.set(runner.id, runner);
    setTimeout(() => this.#departed.delete(runner.id), EXIT_REASON_GRACE).unref();
    if (runner.node) this.#byNode.delete(runner.node);
    runner.placed.clear();
    if (wasUp) {
      this.#hook('onShrink', () => this.#o.onShrink?.({ ...this.#sizeInfo(runner), reason: runner.reason ?? reason }));
      this.emit('runnerDown', runner.status(), runner.reason ?? reason);
    }
  }

  async #retire(runner: RunnerHandle, reason: string): Promise<void> {
    if (runner.state === 'stopped') return;
    runner.state = 'draining';
    runner.reason ??= reason;
    if (runner.node && this.#node.isConnected(runner.node)) {
      await this.#node.request(runner.node, SERVICE.shutdown, { reason }, { timeout: 5000 }).catch(() => {});
      // It drains, then its node goes down; past its drain time the backend stops it anyway.
      await new Promise<void>((resolve) => {
        const stopMonitoring = this.#node.monitor(runner.node!, () => {
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
    if (runner.instance) await this.#backend.shutdown(runner.instance).catch((e: Error) => this.#logger.warn(`backend shutdown of ${runner.id}: ${e.message}`));
  }

  async #stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopping';
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    const stopped = new PoolStoppedError(`pool ${this.name} is stopping`);
    for (const waiter of this.#waiters.splice(0)) waiter.reject(stopped);
    if (this.#inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#o.shutdownTimeout);
        this.#idleCallers.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    // Boots under way end (ready or failed, bounded by bootTimeout) before everything is retired.
    await Promise.allSettled([...this.#boots]);
    await Promise.all([...this.#runners.values()].map((r) => this.#retire(r, 'pool stopped')));
    await this.#backend.dispose().catch((e: Error) => this.#logger.warn(`backend dispose: ${e.message}`));
    this.#node.off('nodedown', this.#onNodeDown);
    try {
      stopActor(this.#supervisor);
    } catch {
      // already stopped
    }
    poolsByNode.get(this.#node)?.delete(this.name);
    this.#state = 'stopped';
    if (this.#ownsNode) await releaseParentNode(this.#node);
    this.#logger.info('stopped');
  }

  #sizeInfo(runner: RunnerHandle): PoolSizeInfo {
    return { pool: this.name, count: this.#liveCount(), runner: runner.id };
  }

  /** User hooks never take the pool down (FLAME's on_grow_end can crash its pool). */
  #hook(name: string, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.#logger.error(`${name} hook threw (ignored): ${(error as Error).message}`);
    }
  }
}
