/**
 * KubernetesBackend: every runner is a pod, built from the parent pod (FLAMEK8sBackend's model),
 * created by the parent and deleted by the parent. Constructing one validates its options and
 * loads nothing else; `init` (once per pool) loads the Kubernetes client with a dynamic import
 * and hands the work to `RunnerPods`.
 */
import { BootError, InvalidOptionError } from '../../errors.js';
import type { Backend, BackendContext, RunnerInstance, RunnerSpec } from '../../flame/backend.js';
import { createLogger } from '../../log.js';
import { KUBERNETES_DEFAULTS, resolveKubernetesOptions, type KubernetesBackendOptions, type ResolvedKubernetesOptions } from './options.js';
import type { Leftovers, RunnerPods } from './runner-pods.js';

export type { KubernetesBackendOptions, PodTemplate, CookieDelivery } from './options.js';
export type { InheritedSetting } from './inherit.js';
export type { Leftovers } from './runner-pods.js';

/** Backends serving a pool in this process (for `stopOnSignals`' last-resort clean-up). */
const active = new Set<KubernetesBackend>();

export class KubernetesBackend implements Backend {
  readonly name = 'kubernetes';
  /** The pool's `bootTimeout` when it sets none: room for an autoscaler to add a node and pull the image. */
  readonly defaultBootTimeout = KUBERNETES_DEFAULTS.bootTimeout;
  /** Links to runner pods cross the pod network: encrypted unless `encryptLinks: false`. */
  readonly encryptLinks: boolean;
  readonly #o: ResolvedKubernetesOptions;
  #claimed = false;
  #pods: RunnerPods | undefined;
  #disposed: Promise<Leftovers> | undefined;

  /** Validates the options and reads POD_NAME/POD_NAMESPACE (MissingEnvError when absent). */
  constructor(options: KubernetesBackendOptions = {}) {
    this.#o = resolveKubernetesOptions(options);
    this.encryptLinks = this.#o.encryptLinks;
  }

  /** Backends of this process that serve a pool now. */
  static active(): KubernetesBackend[] {
    return [...active];
  }

  async init(context: BackendContext): Promise<void> {
    if (this.#claimed) {
      throw new InvalidOptionError(`KubernetesBackend: this backend already serves a pool; give pool "${context.pool}" its own (new KubernetesBackend(...))`);
    }
    this.#claimed = true;
    const o = this.#o;
    const logger = o.log === undefined ? context.logger.child('[kubernetes]') : createLogger(o.log, `[pool ${context.pool}] [kubernetes]`);
    const { RunnerPods } = await import('./runner-pods.js');
    this.#pods = await RunnerPods.start(o, context, logger);
    active.add(this);
  }

  boot(spec: RunnerSpec, signal: AbortSignal): Promise<RunnerInstance> {
    if (!this.#pods) return Promise.reject(new BootError('KubernetesBackend.boot before init'));
    return this.#pods.boot(spec, signal);
  }

  /** What a booting runner's pod is waiting for (the scheduler's or the kubelet's message). */
  describeBoot(runnerId: string): string | undefined {
    return this.#pods?.describeBoot(runnerId);
  }

  /** Deletes the runner's pod (its grace period lets the runner drain); a pod already gone is fine. */
  async shutdown(instance: RunnerInstance): Promise<void> {
    await this.#pods?.shutdown(instance);
  }

  /** Deletes every pod of this pool still there and the cookie Secret (retrying within 10 s), waits for them to go, stops watching. */
  async dispose(): Promise<void> {
    await this.#dispose();
  }

  /** The parent pod's `terminationGracePeriodSeconds`: how long the app has after SIGTERM (30 by default). */
  get parentGracePeriodSeconds(): number {
    return this.#pods?.parentGracePeriodSeconds ?? 30;
  }

  /**
   * Deletes every runner pod (without grace) and the cookie Secret now, within `deadlineMs`, and
   * stops watching: for a parent whose time is up (its grace period ends) before its pools stopped.
   * Returns what could not be deleted.
   */
  async forceCleanup(deadlineMs: number): Promise<Leftovers> {
    return this.#dispose(deadlineMs, 0);
  }

  #dispose(deadlineMs?: number, gracePeriodSeconds?: number): Promise<Leftovers> {
    if (!this.#pods) return Promise.resolve({ pods: [], secret: undefined });
    // A forced clean-up runs even while a graceful dispose is under way (it shortens the grace).
    if (this.#disposed && gracePeriodSeconds !== 0) return this.#disposed;
    const disposing = this.#pods.dispose(deadlineMs, gracePeriodSeconds).finally(() => active.delete(this));
    this.#disposed ??= disposing;
    return disposing;
  }
}
