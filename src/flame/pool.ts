/**
 * A pool of ephemeral runners: FLAME.Pool for Node. Calls go to the least-loaded runner with a
 * free slot; the pool grows towards `max` while callers wait, keeps `min` runners warm and lets
 * idle ones go. `Pool` is the public facade: everything it does is done by its private
 * {@link PoolCore}, which is also what the parent services talk to.
 */
import { EventEmitter } from 'node:events';
import type { Ref } from 'nact';
import { BootError, FlameError, InvalidOptionError } from '../errors.js';
import { createLogger } from '../log.js';
import { CallTrace, callChannel, poolStarted, poolStopped, type CallKind, type PoolStartMessage } from '../observability/diagnostics.js';
import { resolveDefaultBackend, type Backend } from './backend.js';
import { prepareClosureChecks, shipFunction, type AnyFunction, type ModuleRef, type ShippedFunction } from './fn-ref.js';
import { resolveCallOptions, resolvePoolOptions, type CallOptions, type PoolOptions, type ResolvedPoolOptions } from './options.js';
import { checkNactPeer } from './nact-peer.js';
import { acquireParentNode, releaseParentNode } from './parent-node.js';
import { PoolCore, type CoreContext, type RunOptions } from './pool-core.js';
import type { CallRest, CallResult, PlaceRest, PoolEvents, PoolStatus } from './pool-types.js';
import { resolveLeaseOptions } from './lease.js';
import { RemoteStream, type StreamItem, type StreamRest } from './stream.js';
import { warmUp, WARM_UP_BUDGET } from './warm-up.js';
import { track, type Tracked, type TrackedValue, type TrackRest } from './tracked.js';
import { placeRestartable, resolveRestartOptions } from './restartable.js';

export type { PoolStatus, PoolEvents, CallInfo, PoolState, CallRest, PlaceRest, CallResult, RunnerErrorInfo } from './pool-types.js';

/** The arguments array of a call: refused unless it is an array. */
function argsArray(where: string, args: unknown): unknown[] {
  if (args === undefined) return [];
  if (!Array.isArray(args)) {
    throw new InvalidOptionError(`${where}: the arguments must be an array, e.g. ${where}(fn, [${typeof args === 'string' ? JSON.stringify(args) : String(args)}]) (got ${typeof args})`, {
      option: 'args', expected: 'an array of arguments',
    });
  }
  return args;
}

/** Warm-up calls in flight per runner: a burst as `maxConcurrency`'s default lets one runner take. */
const WARM_UP_IN_FLIGHT = 100;

export class Pool extends EventEmitter<PoolEvents> {
  readonly name: string;
  readonly #core: PoolCore;
  readonly #timeout: number;
  #diagnostics: PoolStartMessage | undefined;
  readonly #retries: number;
  /** How a call without options runs (shared: the core never changes it); while warming up, the warm-up's. */
  #defaultCall: Readonly<RunOptions>;
  /** The warm-up's calls are running (see {@link Pool.#warmUp}): calls are not traced. */
  #warming = false;

  private constructor(context: Omit<CoreContext, 'events'>) {
    super();
    this.name = context.o.name;
    this.#timeout = context.o.timeout;
    this.#retries = context.o.retries;
    this.#defaultCall = Object.freeze({ timeout: this.#timeout, signal: undefined, retries: this.#retries, what: 'call' });
    // The core emits on this facade: the listeners are the user's.
    this.#core = new PoolCore({ ...context, events: this });
  }

  /**
   * Starts a pool: validates options, initialises the backend once, and boots `min` runners
   * (resolving once they are ready, or rejecting with the boot error).
   */
  static async start(options: PoolOptions): Promise<Pool> {
    const o = resolvePoolOptions(options);
    checkNactPeer();
    const ownsNode = o.node === undefined;
    // The backend first: one that asks for encrypted links gets an encrypted parent node.
    const backend: Backend = o.backend ?? (await resolveDefaultBackend());
    const node = o.node ?? (await acquireParentNode(o.log, o.logSink, o.maxPayload, o.logger, backend.encryptLinks === true));
    const logger = createLogger(o.log, `[pool ${o.name}]`, o.logSink, o.logger && { logger: o.logger, fields: { pool: o.name } });
    let pool: Pool;
    try {
      // A backend may need a longer default deadline (a pod may wait for a new node and an image pull).
      if (options.bootTimeout === undefined && backend.defaultBootTimeout !== undefined) o.bootTimeout = backend.defaultBootTimeout;
      pool = new Pool({ o, backend, node, ownsNode, logger });
    } catch (error) {
      if (ownsNode) await releaseParentNode(node);
      throw error;
    }
    const core = pool.#core;
    try {
      await backend.init({ pool: o.name, node, logger, runnerExited: (id, reason) => core.runnerExited(id, reason) });
    } catch (error) {
      await core.abandon();
      throw error instanceof FlameError ? error : new BootError(`backend ${backend.name} failed to initialise: ${(error as Error).message}`, { cause: error });
    }
    try {
      // The first runners are spawned by now (synchronously); while they boot, the parent loads
      // the closure checker, which its first call would otherwise wait for.
      const started = core.start();
      prepareClosureChecks();
      await started;
    } catch (error) {
      await pool.stop();
      throw error;
    }
    // A singleUse runner would be used up by the warm-up's first call.
    const warmed = o.warmUp && o.min > 0 && !o.singleUse ? await pool.#warmUp(o) : '';
    pool.#diagnostics = poolStarted({ pool: o.name, node: node.name, snapshot: () => core.status() });
    logger.info(`started with backend ${backend.name} (min ${o.min}, max ${o.max}, maxConcurrency ${o.maxConcurrency})${warmed}`);
    return pool;
  }

  /**
   * Runs `fn(...args)` on a runner and resolves to its result. `fn` is a closure (shipped as its
   * source: it may use only its parameters, globals and `await import()`) or a `moduleRef`.
   * One deadline (`timeout`) covers waiting for capacity and running.
   */
  call<F extends AnyFunction | ModuleRef>(fn: F, ...rest: CallRest<F>): Promise<CallResult<F>>;
  // Not async, no rest array and no option object made when no options are passed: this is the
  // hot path of a pool. What it throws still reaches the caller as a rejection.
  call(fn: AnyFunction | ModuleRef, args?: unknown, options?: CallOptions): Promise<unknown> {
    try {
      const list = argsArray('pool.call', args);
      const run = options === undefined ? this.#defaultCall : this.#callOptions(options);
      return this.#run('call', fn, shipFunction(fn), list, run);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Runs a call or cast on the core, traced on `flame-actors:call` when someone listens. */
  #run(kind: 'call' | 'cast', fn: AnyFunction | ModuleRef, shipped: ShippedFunction, list: unknown[], run: Readonly<RunOptions>): Promise<unknown> {
    const core = this.#core;
    // Untraced (the usual case, and the warm-up's calls): nothing made for the tracer.
    if (!callChannel.hasSubscribers || this.#warming) return core.run(shipped, list, run);
    return new CallTrace(this.name, kind, fn).run((trace) => core.run(shipped, list, run, trace));
  }

  /**
   * Warms the pool's ready runners and this process up with real calls before start resolves
   * (see warm-up.ts): a trivial closure through `call` itself, so that what gets compiled is the
   * path of the user's calls, with the user's shapes. The calls are invisible: nobody can listen
   * to the pool's events yet, they are not traced, and `retries: 0` with the warm-up's own
   * deadline bounds them even on a runner that hangs. A failure (a runner dying) only ends the
   * warm-up: the supervisor handles the runner as any other loss, and start goes on.
   */
  async #warmUp(o: ResolvedPoolOptions): Promise<string> {
    const ready = this.#core.status().runners.filter((r) => r.state === 'ready').length;
    if (ready === 0) return '';
    const usual = this.#defaultCall;
    this.#warming = true;
    // A new closure per call, as an inline closure is: found by its source, sent once, then by its
    // id. A user's first call of a closure (and of a deadline) takes branches that later calls do
    // not; V8 records what a function sees only after its first few runs, so a branch taken once at
    // the start is unknown to the compiled code, which throws itself away when the user's first
    // closure takes it. So the warm-up changes its closure and deadline a few times along the way.
    const closures: ((i: number) => Promise<unknown>)[] = [
      (i) => this.call((x: number) => x, [i]),
      (i) => this.call((y: number) => y, [i]),
      (i) => this.call((z: number) => z, [i]),
      (i) => this.call((w: number) => w, [i]),
    ];
    let stage = -1;
    const call = (i: number): Promise<unknown> => {
      const at = i < 200 ? 0 : i < 1000 ? 1 : i < 2500 ? 2 : 3;
      if (at !== stage) {
        stage = at;
        this.#defaultCall = Object.freeze({ timeout: WARM_UP_BUDGET.maxMs + stage, signal: undefined, retries: 0, what: 'call' });
      }
      return closures[at]!(i);
    };
    try {
      const { calls, ms, ended, error } = await warmUp(call, Math.min(o.maxConcurrency, WARM_UP_IN_FLIGHT) * ready, ready);
      const why = ended === 'failed' ? `ended by a failure: ${(error as Error)?.message ?? String(error)}` : ended;
      return `, warmed up with ${calls} calls in ${Math.round(ms)} ms (${why})`;
    } finally {
      this.#warming = false;
      this.#defaultCall = usual;
    }
  }

  #callOptions(options: CallOptions): RunOptions {
    const { timeout, signal, retries } = resolveCallOptions('pool.call', options, this.#timeout, false, this.#retries);
    return { timeout, signal, retries, what: 'call' };
  }

  /**
   * Runs `fn(...args)` on a runner without waiting for the result. It queues like a call (and
   * fails with PoolOverloadedError past `maxQueue`); errors are emitted as `castError`. Throws
   * at once what it can know at once: bad arguments, an unshippable closure, a stopped pool.
   */
  cast<F extends AnyFunction | ModuleRef>(fn: F, ...[args, options]: CallRest<F>): void {
    const list = argsArray('pool.cast', args);
    const { timeout, signal, retries } = resolveCallOptions('pool.cast', options, Infinity, false, this.#retries);
    const shipped = shipFunction(fn);
    const stopped = this.#core.refuseWhenStopped();
    if (stopped) throw stopped;
    this.#run('cast', fn, shipped, list, { timeout, signal, retries, what: 'cast' }).catch((error: Error) => {
      if (this.listenerCount('castError') > 0) this.emit('castError', error);
    });
  }

  /**
   * Spawns a long-lived actor on a runner: `factory(parentRef, ...args)` must spawn it under
   * `parentRef` with nact and return its ref. The ref works with nact's own `dispatch`, `query`
   * and `stop`. The actor holds one slot of its runner (keeping it alive) until it stops; with
   * `link` (default) it stops when this node goes down.
   */
  async placeChild<Msg = unknown, F extends AnyFunction | ModuleRef = AnyFunction | ModuleRef>(factory: F, ...[args, options]: PlaceRest<F>): Promise<Ref<Msg>> {
    const list = argsArray('pool.placeChild', args);
    // `restart` is taken out here; the rest are a placement's options.
    const { restart, ...rest } = typeof options === 'object' && options !== null ? options : { restart: undefined };
    const { timeout, signal, link } = resolveCallOptions('pool.placeChild', typeof options === 'object' && options !== null ? rest : options, this.#timeout, true);
    const shipped = shipFunction(factory);
    const core = this.#core;
    if (restart !== undefined) {
      let first = true;
      return (await placeRestartable({
        node: core.node,
        logger: core.logger,
        options: resolveRestartOptions(restart),
        // The first placement honours the caller's signal and is traced as the caller's; later
        // ones (restarts) run on their own, each traced when someone listens.
        place: () => {
          const caller = first;
          first = false;
          return this.#traced('place', factory, (trace) => core.place(shipped, list, timeout, caller ? signal : undefined, link, trace)) as Promise<Ref<unknown>>;
        },
      })) as Ref<Msg>;
    }
    return (await this.#traced('place', factory, (trace) => core.place(shipped, list, timeout, signal, link, trace))) as Ref<Msg>;
  }

  /** Runs `begin` under a `flame-actors:call` trace of `kind` when someone listens (not a hot path: placing, tracking). */
  #traced<T>(kind: CallKind, fn: AnyFunction | ModuleRef, begin: (trace: CallTrace | undefined) => Promise<T>): Promise<T> {
    return callChannel.hasSubscribers ? new CallTrace(this.name, kind, fn).runAsync(begin) : begin(undefined);
  }

  /**
   * Runs `fn(...args)` on a runner, where it returns an async generator, an AsyncIterable (a
   * Readable) or an Iterable, and streams its items back in order, with backpressure. Holds one
   * slot until the stream ends; `break`, `return()`, the deadline and the signal cancel the
   * remote generator (its `finally` runs). See stream.ts.
   */
  stream<F extends AnyFunction | ModuleRef>(fn: F, ...[args, options]: StreamRest<F>): RemoteStream<StreamItem<F>> {
    const list = argsArray('pool.stream', args);
    const { timeout, signal, highWaterMark } = resolveLeaseOptions('pool.stream', options, this.#timeout, true);
    const shipped = shipFunction(fn, true);
    const stopped = this.#core.refuseWhenStopped();
    if (stopped) throw stopped;
    const start = { source: this.#core, shipped, args: list, timeout, signal, highWaterMark };
    if (!callChannel.hasSubscribers) return new RemoteStream(start);
    // Traced from here to the stream's end (its last item, an error, or a cancel).
    return new CallTrace(this.name, 'stream', fn).run((trace) => new RemoteStream({ ...start, trace }));
  }

  /**
   * Runs `fn(...args)` on a runner and keeps what it made there: resolves to a handle holding its
   * value (a `Trackable`'s `value`), and the runner stays, its slot held, until the handle is
   * released (`release()`, `await using`, or garbage collection), which runs the Trackable's
   * `release()` on the runner. See tracked.ts.
   */
  async track<F extends AnyFunction | ModuleRef>(fn: F, ...[args, options]: TrackRest<F>): Promise<Tracked<TrackedValue<F>>> {
    const list = argsArray('pool.track', args);
    const { timeout, signal } = resolveLeaseOptions('pool.track', options, this.#timeout, false);
    const shipped = shipFunction(fn);
    const stopped = this.#core.refuseWhenStopped();
    if (stopped) throw stopped;
    return this.#traced('track', fn, (trace) => track<TrackedValue<F>>({ source: this.#core, shipped, args: list, timeout, signal, trace }));
  }

  /** The runners with their state and load, and the callers waiting. */
  status(): PoolStatus {
    return this.#core.status();
  }

  /**
   * Drains and stops: new calls are refused, waiting callers fail with PoolStoppedError,
   * in-flight calls get `shutdownTimeout` to finish, then every runner stops and the backend
   * releases everything. Idempotent.
   */
  stop(): Promise<void> {
    return this.#core.stop().finally(() => poolStopped(this.#diagnostics));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
