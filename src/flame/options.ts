/**
 * Pool options: types, FLAME's defaults (in one place) and validation at `Pool.start`.
 */
import type { ClusterNode } from '../cluster/node.js';
import { InvalidOptionError } from '../errors.js';
import { LOG_LEVELS, loggerOption, type LogLevel, type LogSink, type StructuredLogger } from '../log.js';
import { OptionReader } from '../validate.js';
import type { Backend } from './backend.js';
import type { RestartOptions } from './restartable.js';

/** Passed to the grow/shrink hooks. */
export interface PoolSizeInfo {
  pool: string;
  /** Runners booted or booting, including the one this event is about. */
  count: number;
  runner: string;
}

export interface PoolOptions {
  /** Pool name (logs, runner names). Default `flame-pool`. */
  name?: string;
  /** Where runners come from. Default: {@link defaultBackend} (FLAME_BACKEND, else ProcessBackend). */
  backend?: Backend;
  /** Runners kept warm (booted at start, replaced when they die). Default 0. */
  min?: number;
  /**
   * Before `Pool.start` resolves, warm the `min` runners (and this process) up with real calls of
   * a trivial closure, pipelined like a burst, until their rate stops improving (at most 250 ms):
   * the first thousands of calls of a fresh pool otherwise run at a third of the steady rate while
   * V8 compiles both sides' call path. Invisible (no `call` events, traces or metrics); not done
   * for runners booted later, pools with `min: 0` or `singleUse` pools. Default true.
   */
  warmUp?: boolean;
  /** Most runners at once. Required. */
  max: number;
  /** Calls (and placed actors) one runner takes at once. Default 100. */
  maxConcurrency?: number;
  /** A runner above `min` idle this long stops. Default 30 s. */
  idleShutdownAfter?: number;
  /** A `min` runner idle this long is recycled (a fresh one replaces it). Default Infinity. */
  minIdleShutdownAfter?: number;
  /** Deadline of a runner's boot: provisioning, connecting back, ready. Default 30 s. */
  bootTimeout?: number;
  /** Default deadline of a call: waiting for capacity plus running. Default 30 s. */
  timeout?: number;
  /** How long in-flight work may take to finish when a runner or the pool stops. Default 30 s. */
  shutdownTimeout?: number;
  /** A runner that loses its parent exits after this long without it. Default 20 s. */
  failsafeTimeout?: number;
  /** One call per runner, then it stops. Default false. */
  singleUse?: boolean;
  /** Callers allowed to wait for capacity; beyond, calls fail with PoolOverloadedError. Default Infinity. */
  maxQueue?: number;
  /**
   * Times a call (or cast) is run again after its runner went down (RunnerDownError) or boots
   * failed (BootError), never after an exception of the work itself; within the call's deadline.
   * Only for idempotent work. Default 0 (at most once).
   */
  retries?: number;
  /**
   * Largest message between this pool and its runners, in bytes: a call's arguments, its result,
   * a placed actor's messages. Runners get it in their parent token; the parent node must allow
   * it too (the shared node is started with it; a `node` of yours needs `startNode({ maxPayload })`
   * at least as large). Default 16 MiB.
   */
  maxPayload?: number;
  /** Called when a boot starts. Errors are caught and logged. */
  onGrowStart?: (info: PoolSizeInfo) => void;
  /** Called when a boot ends, with the error if it failed. Errors are caught and logged. */
  onGrowEnd?: (error: Error | undefined, info: PoolSizeInfo) => void;
  /** Called when a runner is gone, for any reason. Errors are caught and logged. */
  onShrink?: (info: PoolSizeInfo & { reason: string }) => void;
  /** Log level, or false (FLAME's default). */
  log?: LogLevel | false;
  logSink?: LogSink;
  /** A pino-compatible logger; records carry `pool` (and `runner` where one is concerned). Default level with it: 'info'. */
  logger?: StructuredLogger;
  /** The parent node runners connect to. Default: one shared node for the process (see README). */
  node?: ClusterNode;
}

export interface ResolvedPoolOptions {
  name: string;
  backend: Backend | undefined;
  min: number;
  warmUp: boolean;
  max: number;
  maxConcurrency: number;
  idleShutdownAfter: number;
  minIdleShutdownAfter: number;
  bootTimeout: number;
  timeout: number;
  shutdownTimeout: number;
  failsafeTimeout: number;
  singleUse: boolean;
  maxQueue: number;
  retries: number;
  maxPayload: number;
  onGrowStart: ((info: PoolSizeInfo) => void) | undefined;
  onGrowEnd: ((error: Error | undefined, info: PoolSizeInfo) => void) | undefined;
  onShrink: ((info: PoolSizeInfo & { reason: string }) => void) | undefined;
  log: LogLevel | false;
  logSink: LogSink | undefined;
  logger: StructuredLogger | undefined;
  node: ClusterNode | undefined;
}

/** Most retries a pool or call may ask for. */
const MAX_RETRIES = 100;

export const POOL_DEFAULTS = {
  name: 'flame-pool',
  min: 0,
  warmUp: true,
  maxConcurrency: 100,
  idleShutdownAfter: 30_000,
  minIdleShutdownAfter: Infinity,
  bootTimeout: 30_000,
  timeout: 30_000,
  shutdownTimeout: 30_000,
  failsafeTimeout: 20_000,
  singleUse: false,
  maxQueue: Infinity,
  retries: 0,
  maxPayload: 16 * 1024 * 1024,
  log: false as LogLevel | false,
} as const;

const KEYS = [
  'name', 'backend', 'min', 'warmUp', 'max', 'maxConcurrency', 'idleShutdownAfter', 'minIdleShutdownAfter', 'bootTimeout',
  'timeout', 'shutdownTimeout', 'failsafeTimeout', 'singleUse', 'maxQueue', 'retries', 'maxPayload', 'onGrowStart', 'onGrowEnd',
  'onShrink',
  'log', 'logSink', 'logger', 'node',
] as const;

export function resolvePoolOptions(input: PoolOptions): ResolvedPoolOptions {
  const r = new OptionReader('Pool.start', input, KEYS);
  if (!r.has('max')) {
    throw new InvalidOptionError('Pool.start: option "max" is required: the most runners the pool may run at once (an integer >= 1)', {
      option: 'max', expected: 'an integer >= 1',
    });
  }
  const max = r.int('max', 1, 1);
  const min = r.int('min', POOL_DEFAULTS.min, 0);
  if (min > max) r.fail('min', `an integer from 0 to max (${max})`);
  const backend = r.raw('backend') as Backend | undefined;
  if (backend !== undefined && (typeof backend !== 'object' || backend === null || typeof backend.boot !== 'function' || typeof backend.init !== 'function')) {
    r.fail('backend', 'a Backend (new ProcessBackend(), new LocalBackend(), new KubernetesBackend(), or your own)');
  }
  const node = r.raw('node') as ClusterNode | undefined;
  if (node !== undefined && (typeof node !== 'object' || node === null || typeof (node as { request?: unknown }).request !== 'function')) {
    r.fail('node', 'a ClusterNode from startNode()');
  }
  const maxQueue = r.has('maxQueue') && r.raw('maxQueue') === Infinity ? Infinity : r.int('maxQueue', Number.MAX_SAFE_INTEGER, 0);
  return {
    name: r.string('name', POOL_DEFAULTS.name, /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'a lowercase name of letters, digits and "-" (it becomes part of runner and pod names)'),
    backend,
    min,
    warmUp: r.bool('warmUp', POOL_DEFAULTS.warmUp),
    max,
    maxConcurrency: r.int('maxConcurrency', POOL_DEFAULTS.maxConcurrency, 1),
    idleShutdownAfter: r.ms('idleShutdownAfter', POOL_DEFAULTS.idleShutdownAfter, { allowInfinity: true }),
    minIdleShutdownAfter: r.ms('minIdleShutdownAfter', POOL_DEFAULTS.minIdleShutdownAfter, { allowInfinity: true }),
    bootTimeout: r.ms('bootTimeout', POOL_DEFAULTS.bootTimeout, { min: 1 }),
    timeout: r.ms('timeout', POOL_DEFAULTS.timeout, { min: 1, allowInfinity: true }),
    shutdownTimeout: r.ms('shutdownTimeout', POOL_DEFAULTS.shutdownTimeout),
    failsafeTimeout: r.ms('failsafeTimeout', POOL_DEFAULTS.failsafeTimeout, { min: 1 }),
    singleUse: r.bool('singleUse', POOL_DEFAULTS.singleUse),
    maxQueue: maxQueue === Number.MAX_SAFE_INTEGER ? Infinity : maxQueue,
    retries: r.int('retries', POOL_DEFAULTS.retries, 0, MAX_RETRIES),
    maxPayload: r.int('maxPayload', POOL_DEFAULTS.maxPayload, 1024, 2 ** 31 - 1),
    onGrowStart: r.fn('onGrowStart'),
    onGrowEnd: r.fn('onGrowEnd'),
    onShrink: r.fn('onShrink'),
    log: r.oneOf<LogLevel | false>('log', r.has('logger') ? 'info' : POOL_DEFAULTS.log, [false, ...LOG_LEVELS]),
    logSink: r.fn('logSink'),
    logger: loggerOption(r),
    node,
  };
}

/** Per-call options. */
export interface CallOptions {
  /** Deadline for waiting plus running, in ms. Default: the pool's `timeout`. */
  timeout?: number;
  /** Cancels the call (waiting or running). */
  signal?: AbortSignal;
  /** Runs again after RunnerDownError or BootError (idempotent work only). Default: the pool's `retries`. */
  retries?: number;
}

export interface PlaceOptions {
  /** Deadline for placing the actor, in ms. Default: the pool's `timeout`. */
  timeout?: number;
  /** Cancels the placement. */
  signal?: AbortSignal;
  /** Stop the actor when this (the caller's) node goes down. Default true. */
  link?: boolean;
  /** Place it again on another runner when its runner dies; the ref returned keeps working (see restartable.ts). */
  restart?: RestartOptions;
}

export interface ResolvedCallOptions {
  timeout: number;
  signal: AbortSignal | undefined;
  link: boolean;
  retries: number;
}

export function resolveCallOptions(where: string, input: CallOptions | PlaceOptions | undefined, poolTimeout: number, place = false, poolRetries = 0): ResolvedCallOptions {
  const r = new OptionReader(where, input, place ? ['timeout', 'signal', 'link'] : ['timeout', 'signal', 'retries']);
  const signal = r.raw('signal');
  if (signal !== undefined && !(signal instanceof AbortSignal)) r.fail('signal', 'an AbortSignal');
  return {
    timeout: r.ms('timeout', poolTimeout, { min: 1, allowInfinity: true }),
    signal: signal as AbortSignal | undefined,
    link: r.bool('link', true),
    retries: r.int('retries', poolRetries, 0, MAX_RETRIES),
  };
}
