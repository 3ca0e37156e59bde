/**
 * The Backend contract: how a pool gets runners. Local, process and Kubernetes backends all
 * implement it. Unlike FLAME's, `init` runs once per pool (not per runner), every boot gets an
 * AbortSignal and a deadline, and the backend reports runners that died to the pool.
 */
import type { ClusterNode } from '../cluster/node.js';
import { InvalidOptionError } from '../errors.js';
import type { Logger } from '../log.js';

/** What a backend is told about the pool it serves, once. */
export interface BackendContext {
  /** The pool's name (labels, pod names). */
  readonly pool: string;
  /** The parent node runners connect back to. */
  readonly node: ClusterNode;
  readonly logger: Logger;
  /** Tells the pool a runner ended (process exit, pod failure), with a reason a user can act on. */
  runnerExited(runnerId: string, reason: string): void;
}

/** Everything needed to start one runner. */
export interface RunnerSpec {
  readonly id: string;
  /** Variables the runner process must see: FLAME_PARENT, FLAME_COOKIE, ... */
  readonly env: Readonly<Record<string, string>>;
  /** Milliseconds the runner may take to drain when asked to stop. */
  readonly shutdownTimeout: number;
}

/** A backend's handle on one runner it started. */
export interface RunnerInstance {
  readonly id: string;
  /** Human-readable location: a pid, a pod name. */
  readonly description: string;
}

export interface Backend {
  /** `local`, `process`, `kubernetes`... (goes into FLAME_PARENT). */
  readonly name: string;
  /**
   * Links to this backend's runners must be encrypted (runners on a network others share, such
   * as a pod network): the pool's shared parent node then uses `tls: 'auto'`, and so do its
   * runners. Default false (FLAME_TLS decides).
   */
  readonly encryptLinks?: boolean;
  /** Once per pool, before the first boot. Throw to refuse (bad config, no permissions). */
  init(context: BackendContext): Promise<void>;
  /**
   * Starts a runner that will read `spec.env` and connect back. Resolves once it is started
   * (process spawned, pod created), not once it is connected. Must stop and clean up when
   * `signal` aborts (the boot deadline passed).
   */
  boot(spec: RunnerSpec, signal: AbortSignal): Promise<RunnerInstance>;
  /** Makes sure the runner is gone and its resources released; idempotent. */
  shutdown(runner: RunnerInstance): Promise<void>;
  /** The pool is stopping: release anything left. */
  dispose(): Promise<void>;
  /** The pool's `bootTimeout` when the pool sets none (a pod may wait for a new node; a process does not). */
  readonly defaultBootTimeout?: number;
  /** What a runner that is still booting waits for (a pod's scheduler or kubelet message), for `BootTimeoutError`. */
  describeBoot?(runnerId: string): string | undefined;
}

let defaultFactory: (() => Backend | Promise<Backend>) | undefined;

/**
 * Registers what `Pool.start` uses when given no backend. The backends layer registers
 * `defaultBackend` (FLAME_BACKEND), so this layer never imports the backends.
 */
export function setDefaultBackendFactory(factory: () => Backend | Promise<Backend>): void {
  defaultFactory = factory;
}

export async function resolveDefaultBackend(): Promise<Backend> {
  if (!defaultFactory) {
    throw new InvalidOptionError('Pool.start: no default backend is registered: import flame-actors (its index registers defaultBackend) or pass the "backend" option', {
      option: 'backend',
      expected: 'a Backend, or the default one registered by importing flame-actors',
    });
  }
  return defaultFactory();
}
