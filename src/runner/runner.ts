/**
 * What runs on a runner: a cluster node that connects back to its parent, runs shipped
 * functions, hosts placed actors, and ends when its terminator says so.
 */
import { spawn, stop as stopActor, type Ref } from 'nact';
import { startNode, type ClusterNode } from '../cluster/node.js';
import { DEFAULT_PORT } from '../cluster/address.js';
import { childNames, watchChildren } from '../cluster/nact-internals.js';
import { backoffDelay, type BackoffPolicy } from '../backoff.js';
import { CallTimeoutError, MissingEnvError, ModuleRefError, QueryTimeoutError, RunnerDownError } from '../errors.js';
import { parentInfo, type ParentInfo } from '../flame/parent.js';
import {
  SERVICE,
  type CallRequest,
  type IdleReply,
  type PlaceReply,
  type PlaceRequest,
  type ShutdownRequest,
} from '../flame/protocol.js';
import type { LogLevel, LogSink } from '../log.js';
import { CallCancellation, startWith } from './call-context.js';
import { FunctionLoader } from './fn-loader.js';
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

interface PlacedChild {
  ref: Ref<unknown>;
  link: boolean;
  name: string;
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
  const node = await startNode({
    name: `${info.runner}`,
    host: env.POD_IP || '127.0.0.1',
    port,
    cookie,
    tls: info.tls === true ? 'auto' : false,
    log: (info.log || 'warn') as LogLevel,
    ...(options.logSink ? { logSink: options.logSink } : {}),
  });
  const logger = node.logger;
  const loader = new FunctionLoader();
  const children = new Map<number, PlacedChild>();
  let nextChild = 1;
  let endedResolve!: () => void;
  const ended = new Promise<void>((resolve) => (endedResolve = resolve));
  const exit = options.exit ?? ((code: number) => process.exit(code));

  // Placed actors live under one supervisor actor, so the runner learns when each one stops.
  const placement = spawn(node.system, (s: undefined) => s, 'placed', { onCrash: (_m, _e, ctx) => ctx.stopChild });
  const placedChildren = new Map<string, number>();
  watchChildren(node.name, placement, (name) => {
    const id = placedChildren.get(name);
    if (id === undefined) return;
    placedChildren.delete(name);
    children.delete(id);
    terminator.childStopped();
    node.request(info.parent, SERVICE.childExit, { runner: info.runner, child: id }, { timeout: 5000 }).catch(() => {});
  });

  const terminator = new Terminator({
    idleShutdownAfter: info.idleShutdownAfter,
    shutdownTimeout: info.shutdownTimeout,
    failsafeTimeout: info.failsafeTimeout,
    singleUse: info.singleUse,
    logger,
    askParentToStop: async () => {
      const reply = (await node.request(info.parent, SERVICE.idle, { runner: info.runner }, { timeout: 5000 })) as IdleReply;
      return reply?.stop === true;
    },
    stopChildren: (onlyLinked) => {
      for (const child of children.values()) {
        if (!onlyLinked || child.link) {
          try {
            stopActor(child.ref);
          } catch {
            // already stopped
          }
        }
      }
    },
    exit: async (reason, code) => {
      logger.info(`runner ${info.runner} exiting: ${reason}`);
      process.off('SIGTERM', onSigterm);
      await node.stop();
      endedResolve();
      exit(code, reason);
    },
  });

  node.handle(SERVICE.call, async (payload, context) => {
    const request = payload as CallRequest;
    if (terminator.draining) {
      throw new RunnerDownError(`runner ${info.runner} is shutting down (${terminator.draining}) and takes no new calls`);
    }
    terminator.callStarted();
    const cancellation = new CallCancellation();
    context.onCancel((reason) => cancellation.abort(reason instanceof QueryTimeoutError
      ? new CallTimeoutError(`call exceeded its deadline on ${info.runner} (the caller's timeout)`)
      : reason));
    const timer = request.timeout >= 0
      ? setTimeout(() => cancellation.abort(new CallTimeoutError(`call exceeded its deadline of ${request.timeout} ms on ${info.runner}`)), request.timeout)
      : undefined;
    try {
      const fn = await loader.load(request.fn);
      return await startWith(cancellation, () => fn(...(Array.isArray(request.args) ? request.args : [])));
    } finally {
      if (timer) clearTimeout(timer);
      terminator.callEnded();
    }
  });

  node.handle(SERVICE.place, async (payload) => {
    const request = payload as PlaceRequest;
    if (terminator.draining) {
      throw new RunnerDownError(`runner ${info.runner} is shutting down (${terminator.draining}) and takes no new actors`);
    }
    const fn = await loader.load(request.fn);
    const before = new Set(childNames(node.name, placement));
    const ref = (await fn(placement, ...(Array.isArray(request.args) ? request.args : []))) as Ref<unknown> & { name?: string };
    const name = ref?.name;
    if (typeof name !== 'string' || before.has(name) || !childNames(node.name, placement).includes(name)) {
      throw new ModuleRefError('placeChild: the factory must spawn the actor under the parent ref it is given (its first argument) and return its ref');
    }
    const id = nextChild++;
    children.set(id, { ref, link: request.link, name });
    placedChildren.set(name, id);
    terminator.childPlaced();
    return { ref, child: id } satisfies PlaceReply;
  });

  node.handle(SERVICE.shutdown, (payload) => {
    const reason = (payload as ShutdownRequest)?.reason ?? 'asked by the parent';
    void terminator.drain(reason);
    return true;
  });

  const onSigterm = () => void terminator.drain('SIGTERM');
  if (options.handleSignals ?? true) process.on('SIGTERM', onSigterm);

  let joined = false;
  node.on('nodedown', (down, reason) => {
    if (joined && down === info.parent) terminator.parentLost(reason.message);
  });

  // Reaching the parent is bounded by the failsafe: a runner never lingers without one.
  terminator.armFailsafe(`parent ${info.parent} not reachable`);
  // The parent gives up on a boot after bootTimeout, so trying longer is pointless; a parent
  // address that keeps refusing connections means the parent is gone.
  const deadline = performance.now() + Math.min(info.failsafeTimeout, info.bootTimeout);
  let refusals = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      await node.connect(info.parent);
      await node.request(info.parent, SERVICE.ready, { runner: info.runner, pool: info.pool }, { timeout: info.bootTimeout });
      break;
    } catch (error) {
      refusals = /ECONNREFUSED/.test(String((error as Error).message)) ? refusals + 1 : 0;
      const fatal = (error as { code?: string }).code === 'FLAME_ERR_AUTH' || (error as { code?: string }).code === 'FLAME_ERR_BOOT';
      if (performance.now() > deadline || fatal || refusals >= 3 || terminator.draining) {
        logger.error(`cannot join parent ${info.parent}: ${(error as Error).message}`);
        await terminator.drain('could not join the parent', 0, 1);
        throw error;
      }
      await new Promise((r) => setTimeout(r, backoffDelay(JOIN_BACKOFF, attempt + 1)));
    }
  }
  terminator.disarmFailsafe();
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
