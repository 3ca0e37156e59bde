/**
 * What runs on a runner: a cluster node that connects back to its parent, runs shipped
 * functions, hosts placed actors, and ends when its terminator says so.
 */
import { startNode, type ClusterNode } from '../cluster/node.js';
import { DEFAULT_PORT } from '../cluster/address.js';
import { backoffDelay, type BackoffPolicy } from '../backoff.js';
import { MissingEnvError, RunnerDownError } from '../errors.js';
import { parentInfo, type ParentInfo } from '../flame/parent.js';
import { SERVICE, type FaultRequest, type IdleReply } from '../flame/protocol.js';
import type { Logger, LogLevel, LogSink, StructuredLogger } from '../log.js';
import { catchFaults } from './faults.js';
import { FunctionLoader } from './fn-loader.js';
import { PlacedActors } from './placement.js';
import { surviveLostStdio } from './stdio.js';
import { installRunnerServices } from './services.js';
import { Terminator } from './terminator.js';

/** Backoff between attempts to join the parent (no jitter: one runner, one parent). */
const JOIN_BACKOFF: BackoffPolicy = { baseMs: 50, maxMs: 1000, jitter: false };

export interface RunnerOptions {
  /** Where FLAME_PARENT, FLAME_COOKIE, POD_IP and FLAME_PORT are read. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Ends the process when the runner is done. Default: `process.exit(code)` after the node closes. */
  exit?: (code: number, reason: string) => void;
  /** Handle SIGTERM by draining (default true for a runner process). */
  handleSignals?: boolean;
  logSink?: LogSink;
  /** A pino-compatible logger (instead of logSink); records carry `node`, `pool` and `runner`. */
  logger?: StructuredLogger;
  /**
   * Report errors that the shipped work leaves unhandled (uncaught exceptions, unhandled
   * rejections) instead of letting them end the process (default true for a runner process;
   * an in-process runner leaves the host process's handlers alone).
   */
  catchUncaught?: boolean;
  /** Aborting it drains the runner, also while it is still joining its parent. */
  signal?: AbortSignal;
}

/** A running runner (mostly for in-process use by LocalBackend and tests). */
export interface Runner {
  readonly node: ClusterNode;
  readonly info: ParentInfo;
  /** Drains and ends the runner. */
  stop(reason?: string): Promise<void>;
  /** Resolves when the runner has ended. */
  readonly ended: Promise<void>;
}

/**
 * Boots this process as a runner: reads its parent from FLAME_PARENT, connects back and
 * announces itself. Apps whose own entry point doubles as the runner call this when
 * `isRunner()` is true, instead of starting their web server.
 */
export async function startRunner(options: RunnerOptions = {}): Promise<Runner> {
  const env = options.env ?? process.env;
  const info = parentInfo(env);
  if (!info) {
    throw new MissingEnvError('FLAME_PARENT is not set: a runner is started by a pool, which passes its parent in FLAME_PARENT');
  }
  const cookie = env.FLAME_COOKIE;
  if (!cookie) throw new MissingEnvError('FLAME_COOKIE is not set: the runner needs the cookie its parent uses');
  const port = env.FLAME_PORT !== undefined && env.FLAME_PORT !== '' ? Number(env.FLAME_PORT) : DEFAULT_PORT;
  // One rule for every module a runner loads by name: shipped functions, placed actors' factories
  // and `spawnRemote` on this node all resolve from the app's root.
  const loader = new FunctionLoader();
  const node = await startNode({
    name: `${info.runner}`,
    host: env.POD_IP || '127.0.0.1',
    port,
    cookie,
    tls: info.tls === true ? 'auto' : false,
    log: (info.log || 'warn') as LogLevel,
    ...(info.maxPayload !== undefined ? { maxPayload: info.maxPayload } : {}),
    loadModule: (specifier) => loader.importModule(specifier),
    ...(options.logSink ? { logSink: options.logSink } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const logger = node.logger.child('', { pool: info.pool, runner: info.runner });
  let endedResolve!: () => void;
  const ended = new Promise<void>((resolve) => (endedResolve = resolve));
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const tellParent = (service: string, payload: unknown) => node.request(info.parent, service, payload, { timeout: 5000 });

  const placement = new PlacedActors(node, {
    stopped: (child) => {
      terminator.childStopped();
      tellParent(SERVICE.childExit, { runner: info.runner, child }).catch(() => {});
    },
  });
  const onSigterm = () => void terminator.drain('SIGTERM');
  let stopCatching = () => {};
  const terminator = new Terminator({
    idleShutdownAfter: info.idleShutdownAfter,
    shutdownTimeout: info.shutdownTimeout,
    failsafeTimeout: info.failsafeTimeout,
    singleUse: info.singleUse,
    logger,
    askParentToStop: async () => ((await tellParent(SERVICE.idle, { runner: info.runner })) as IdleReply)?.stop === true,
    stopChildren: (onlyLinked) => placement.stopAll(onlyLinked),
    exit: async (reason, code) => {
      logger.info(`runner ${info.runner} exiting: ${reason}`);
      process.off('SIGTERM', onSigterm);
      await node.stop();
      stopCatching();
      endedResolve();
      exit(code, reason);
    },
  });
  const services = installRunnerServices({ node, info, loader, terminator, placement });
  if (options.handleSignals ?? true) process.on('SIGTERM', onSigterm);
  if (options.catchUncaught ?? true) {
    surviveLostStdio();
    stopCatching = catchFaults({
      logger,
      active: services.active,
      report: (fault) => void tellParent(SERVICE.fault, { runner: info.runner, ...fault } satisfies FaultRequest).catch(() => {}),
    });
  }

  if (options.signal) {
    const signal = options.signal;
    if (signal.aborted) void terminator.drain('aborted');
    else signal.addEventListener('abort', () => void terminator.drain('aborted'), { once: true });
  }

  let joined = false;
  node.on('nodedown', (down, reason) => {
    if (joined && down === info.parent) terminator.parentLost(reason.message);
  });
  await joinParent(node, info, terminator, logger);
  joined = true;
  if (!node.isConnected(info.parent)) terminator.parentLost('link lost while joining');
  terminator.start();
  logger.info(`runner ${info.runner} ready for ${info.parent}`);
  return {
    node,
    info,
    stop: (reason = 'stopped') => terminator.drain(reason),
    ended,
  };
}

/**
 * Connects to the parent and announces the runner (SERVICE.ready), retrying with backoff. Bounded
 * by the failsafe (a runner never lingers without a parent) and by the parent's bootTimeout, past
 * which it has given up on this boot; a parent address that keeps refusing connections means the
 * parent is gone. On failure the runner drains and the error is rethrown.
 */
async function joinParent(node: ClusterNode, info: ParentInfo, terminator: Terminator, logger: Logger): Promise<void> {
  if (terminator.draining) throw new RunnerDownError(`runner ${info.runner} stopped before it joined its parent (${terminator.draining})`);
  terminator.armFailsafe(`parent ${info.parent} not reachable`);
  const deadline = performance.now() + Math.min(info.failsafeTimeout, info.bootTimeout);
  let refusals = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      await node.connect(info.parent);
      await node.request(info.parent, SERVICE.ready, { runner: info.runner, pool: info.pool }, { timeout: info.bootTimeout });
      break;
    } catch (error) {
      refusals = /ECONNREFUSED/.test(String((error as Error).message)) ? refusals + 1 : 0;
      const code = (error as { code?: string }).code;
      const fatal = code === 'FLAME_ERR_AUTH' || code === 'FLAME_ERR_BOOT';
      if (performance.now() > deadline || fatal || refusals >= 3 || terminator.draining) {
        logger.error(`cannot join parent ${info.parent}: ${(error as Error).message}`);
        await terminator.drain('could not join the parent', 0, 1);
        throw error;
      }
      await new Promise((r) => setTimeout(r, backoffDelay(JOIN_BACKOFF, attempt + 1)));
    }
  }
  terminator.disarmFailsafe();
}
