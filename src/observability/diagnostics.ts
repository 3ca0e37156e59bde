/**
 * `node:diagnostics_channel` channels, named `flame-actors:*` as undici's are `undici:*`, so
 * tracers (OpenTelemetry instrumentations, APMs) and `enableMetrics` can watch pools and links
 * without the library knowing about them. Publishing costs one `hasSubscribers` check when nobody
 * listens: no message is built.
 *
 * This file sits at the root of `src` and imports nothing from the layers, so `src/cluster` and
 * `src/flame` both publish through it. Every message shape below is part of the public API.
 */
import dc from 'node:diagnostics_channel';

/** The channel names. */
export const CHANNELS = {
  /** tracingChannel: start, end, asyncStart, asyncEnd, error; message {@link CallMessage}. */
  call: 'flame-actors:call',
  /** tracingChannel; message {@link BootMessage}. */
  boot: 'flame-actors:boot',
  /** {@link RunnerUpMessage} */
  runnerUp: 'flame-actors:runner:up',
  /** {@link RunnerDownMessage} */
  runnerDown: 'flame-actors:runner:down',
  /** {@link LinkUpMessage} */
  linkUp: 'flame-actors:link:up',
  /** {@link LinkDownMessage} */
  linkDown: 'flame-actors:link:down',
  /** {@link LinkTrafficMessage}: one per frame sent or received on a link. */
  linkTraffic: 'flame-actors:link:traffic',
  /** {@link HandshakeRefusedMessage} */
  handshakeRefused: 'flame-actors:handshake:refused',
  /** {@link QueueOverloadMessage} */
  queueOverload: 'flame-actors:pool:overload',
  /** {@link PoolStartMessage} */
  poolStart: 'flame-actors:pool:start',
  /** {@link PoolStopMessage} */
  poolStop: 'flame-actors:pool:stop',
} as const;

/** The pool methods traced on `flame-actors:call`. */
export type CallKind = 'call' | 'cast' | 'place' | 'track' | 'stream';

/**
 * The context object of `flame-actors:call`, one per `pool.call`, `cast`, `placeChild`, `track` or
 * `stream`. The same object is given to start, end, asyncStart, asyncEnd and error; the fields
 * after `function` are set when the call settles (before asyncStart); a stream settles at its end.
 */
export interface CallMessage {
  pool: string;
  /** Which pool method: `call`, `cast`, `place` (`placeChild`), `track`, or `stream` (its whole life, open to end). */
  kind: CallKind;
  /** A closure's name (`'anonymous'` without one), or `module#export` for a `moduleRef`. */
  function: string;
  /** The runner it ran on; undefined if it never got one (a timeout while queued, the pool stopping). */
  runner?: string;
  /** That runner's node name. */
  node?: string;
  /** Milliseconds spent waiting for a slot. */
  waitMs?: number;
  /** Milliseconds from placement to the answer. */
  runMs?: number;
  /** The error's `code` (`FLAME_ERR_*`, or a remote error's own code) when it failed. */
  code?: string;
  /** Set by the error event (and before asyncStart) when the call failed. */
  error?: unknown;
  /** The call's result, set before asyncStart when it succeeded. */
  result?: unknown;
}

/** The context of `flame-actors:boot`, one per runner boot (provisioning to ready). */
export interface BootMessage {
  pool: string;
  runner: string;
  /** The backend's name: `process`, `local`, `kubernetes`, or a custom one. */
  backend: string;
  /** Set when it settles. */
  bootMs?: number;
  /** The runner's node name, once it connected back. */
  node?: string;
  code?: string;
  error?: unknown;
}

export interface RunnerUpMessage {
  pool: string;
  runner: string;
  node: string;
  bootMs: number;
}

export interface RunnerDownMessage {
  pool: string;
  runner: string;
  /** Undefined for a runner that went down before it connected. */
  node: string | undefined;
  /** Why: `idle`, `pool stopped`, the backend's or the link's reason. */
  reason: string;
}

export interface LinkUpMessage {
  /** This node. */
  node: string;
  /** The node at the other end. */
  peer: string;
}

export interface LinkDownMessage extends LinkUpMessage {
  reason: string;
  /** The error's code, e.g. `FLAME_ERR_NODE_DOWN`. */
  code: string | undefined;
}

export interface LinkTrafficMessage extends LinkUpMessage {
  direction: 'in' | 'out';
  /** Frame size on the wire. */
  bytes: number;
  /** Messages the frame carries (frames coalesce the messages of one event-loop turn). */
  messages: number;
}

export interface HandshakeRefusedMessage {
  /** This node. */
  node: string;
  /** The remote socket address. */
  address: string;
  /** The node name the peer claimed, if it got that far. */
  peer: string | undefined;
  reason: string;
}

export interface QueueOverloadMessage {
  pool: string;
  /** Callers waiting when this one was refused. */
  queued: number;
  maxQueue: number;
}

/** What a pool reports about itself to gauges and the status endpoint (its `PoolStatus`). */
export interface PoolSnapshot {
  state: string;
  runners: readonly { id: string; node: string | undefined; state: string; load: number; description: string | undefined }[];
  queued: number;
  min: number;
  max: number;
  maxConcurrency: number;
}

export interface PoolStartMessage {
  pool: string;
  /** The parent node the pool runs on. */
  node: string;
  /** Its current runners and queue; cheap, call it when sampling. */
  snapshot(): PoolSnapshot;
}

export interface PoolStopMessage {
  pool: string;
  node: string;
}

export const callChannel = dc.tracingChannel<object, CallMessage>(CHANNELS.call);
export const bootChannel = dc.tracingChannel<object, BootMessage>(CHANNELS.boot);
export const runnerUpChannel = dc.channel(CHANNELS.runnerUp);
export const runnerDownChannel = dc.channel(CHANNELS.runnerDown);
export const linkUpChannel = dc.channel(CHANNELS.linkUp);
export const linkDownChannel = dc.channel(CHANNELS.linkDown);
export const linkTrafficChannel = dc.channel(CHANNELS.linkTraffic);
export const handshakeRefusedChannel = dc.channel(CHANNELS.handshakeRefused);
export const queueOverloadChannel = dc.channel(CHANNELS.queueOverload);
export const poolStartChannel = dc.channel(CHANNELS.poolStart);
export const poolStopChannel = dc.channel(CHANNELS.poolStop);

/** Publishes `make()` on `channel` only if someone listens (the message is not even built otherwise). */
export function publish<M>(channel: dc.Channel, make: () => M): void {
  if (channel.hasSubscribers) channel.publish(make());
}

function errorCode(error: unknown): string {
  const code = error !== null && typeof error === 'object' ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : 'ERR_UNKNOWN';
}

/**
 * `tracePromise` as Node implements it (start with bound stores, end, then error/asyncStart/asyncEnd
 * on settling), with `settle` filling the context's own fields instead of only `result`.
 */
function trace<C extends object, T>(
  channel: dc.TracingChannel<object, C>,
  context: C,
  run: () => Promise<T>,
  settle: (context: C, value: T | undefined, error: unknown) => void,
): Promise<T> {
  const { start, end, asyncStart, asyncEnd, error: errorChannel } = channel;
  return start.runStores(context, () => {
    try {
      return run().then(
        (value) => {
          settle(context, value, undefined);
          asyncStart.publish(context);
          asyncEnd.publish(context);
          return value;
        },
        (error: unknown) => {
          settle(context, undefined, error);
          (context as { error?: unknown }).error = error;
          errorChannel.publish(context);
          asyncStart.publish(context);
          asyncEnd.publish(context);
          throw error;
        },
      );
    } catch (error) {
      (context as { error?: unknown }).error = error;
      errorChannel.publish(context);
      throw error;
    } finally {
      end.publish(context);
    }
  });
}

/** The `function` field of a call message. */
function functionLabel(fn: unknown): string {
  if (typeof fn === 'function') return fn.name || 'anonymous';
  if (fn !== null && typeof fn === 'object' && 'module' in fn && 'export' in fn) return `${String(fn.module)}#${String(fn.export)}`;
  return 'unknown';
}

/**
 * Whether stores may be bound to `channel` (`bindStore`). Node 20 keeps them in the channel's
 * `_stores` map, and its `runStores` builds a closure and walks that map with an iterator on every
 * call even when it is empty (a tenth of a traced call's cost); with no store bound, publishing
 * and calling is all it does. Anything else than a map with a size (another Node) counts as bound.
 */
function hasBoundStores(channel: dc.Channel): boolean {
  const stores = (channel as unknown as { _stores?: { size?: unknown } })._stores;
  return typeof stores?.size !== 'number' || stores.size > 0;
}

/**
 * One traced `pool.call`, `cast`, `placeChild`, `track` or `stream` on `flame-actors:call`: the
 * published context and its publishing, driven by the work itself. Where the call settles it fills the context and publishes
 * `error`/`asyncStart`/`asyncEnd` before the caller's promise settles, which is what
 * `tracePromise` publishes, without a second promise chained behind the caller's and the two
 * closures per call that chaining takes (a traced call costs one object besides its context).
 */
export class CallTrace {
  readonly message: CallMessage;
  /** Within {@link run}: a call settled that early is published after `end`, as `tracePromise` orders it. */
  #starting = false;
  #settledEarly: { ok: boolean; value: unknown } | undefined = undefined;

  constructor(pool: string, kind: CallKind, fn: unknown) {
    // Every field an attempt sets is there from the start: one shape, no property added per call.
    this.message = { pool, kind, function: functionLabel(fn), runner: undefined, node: undefined, waitMs: undefined, runMs: undefined };
  }

  /**
   * Publishes `start` and runs `begin(this)` with the `start` channel's bound stores (an
   * AsyncLocalStorage bound there is current in the call's synchronous start and in what it
   * awaits), then publishes `end`; `error` too if `begin` throws.
   */
  run<T>(begin: (trace: CallTrace) => T): T {
    const { message } = this;
    const { start } = callChannel;
    this.#starting = true;
    try {
      if (hasBoundStores(start)) return start.runStores(message, begin, undefined, this);
      start.publish(message);
      return begin(this);
    } catch (error) {
      message.error = error;
      callChannel.error.publish(message);
      throw error;
    } finally {
      this.#starting = false;
      callChannel.end.publish(message);
      const early = this.#settledEarly;
      if (early !== undefined) {
        this.#settledEarly = undefined;
        this.settled(early.ok, early.value);
      }
    }
  }

  /**
   * {@link run} for work that settles through the promise `begin` returns (placing an actor, a
   * tracked call: not on a hot path), which reports its runner with {@link attempt} on the way.
   */
  runAsync<T>(begin: (trace: CallTrace) => Promise<T>): Promise<T> {
    return this.run(() => begin(this).then(
      (value) => {
        this.settled(true, value);
        return value;
      },
      (error: unknown) => {
        this.settled(false, error);
        throw error;
      },
    ));
  }

  /** The attempt that settles the call ran on `runner`: what the context reports of it. */
  attempt(runner: string | undefined, node: string | undefined, waitMs: number, runMs: number): void {
    const m = this.message;
    m.runner = runner;
    m.node = node;
    m.waitMs = waitMs;
    m.runMs = runMs;
  }

  /** The call settled (called once, just before its promise settles). */
  settled(ok: boolean, value: unknown): void {
    if (this.#starting) {
      this.#settledEarly = { ok, value };
      return;
    }
    const m = this.message;
    if (ok) {
      m.result = value;
    } else {
      m.code = errorCode(value);
      m.error = value;
      callChannel.error.publish(m);
    }
    callChannel.asyncStart.publish(m);
    callChannel.asyncEnd.publish(m);
  }
}

/** Runs a boot under `flame-actors:boot`; `nodeOf` reads the node name from what the boot resolves to. */
export function traceBoot<T>(pool: string, runner: string, backend: string, run: () => Promise<T>, nodeOf: (value: T) => string | undefined): Promise<T> {
  if (!bootChannel.hasSubscribers) return run();
  const started = performance.now();
  const context: BootMessage = { pool, runner, backend };
  return trace(bootChannel, context, run, (c, value, error) => {
    c.bootMs = performance.now() - started;
    if (error === undefined) c.node = nodeOf(value as T);
    else c.code = errorCode(error);
  });
}

/** Pools running in this process (their name, node and snapshot), for gauges sampled at any time. */
const pools = new Set<PoolStartMessage>();

export function livePools(): Iterable<PoolStartMessage> {
  return pools;
}

/** A pool started: registers it for gauges and publishes `flame-actors:pool:start`. Returns what {@link poolStopped} takes. */
export function poolStarted(message: PoolStartMessage): PoolStartMessage {
  pools.add(message);
  publish(poolStartChannel, () => message);
  return message;
}

export function poolStopped(message: PoolStartMessage | undefined): void {
  if (!message || !pools.delete(message)) return;
  publish(poolStopChannel, (): PoolStopMessage => ({ pool: message.pool, node: message.node }));
}
