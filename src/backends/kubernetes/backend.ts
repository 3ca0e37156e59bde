/**
 * KubernetesBackend: every runner is a pod, built from the parent pod (FLAMEK8sBackend's model),
 * created by the parent and deleted by the parent. `init` runs once per pool: it checks the
 * service account's permissions, reads the parent pod once, starts one watch on the pool's
 * pods and hands its events to the supervisor actor. `boot` creates a pod and waits, through the
 * watch, until it runs with an IP or fails with the kubelet's reason; whatever it created is
 * deleted when the boot fails or is abandoned.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { BootError, InvalidOptionError, KubernetesError } from '../../errors.js';
import type { Backend, BackendContext, RunnerInstance, RunnerSpec } from '../../flame/backend.js';
import { createLogger, type Logger } from '../../log.js';
import { KubernetesClient, type Resource, type Verb } from './client.js';
import { resolveKubernetesOptions, type KubernetesBackendOptions, type ResolvedKubernetesOptions } from './options.js';
import { PodWatcher } from './pod-watcher.js';
import { LABELS, RunnerPodTemplate } from './runner-pod-template.js';
import { RunnerPodSupervisor } from './supervisor.js';

export type { KubernetesBackendOptions, PodTemplate, CookieDelivery } from './options.js';

/** A runner's pod, as the backend tracks it. */
interface RunnerPod extends RunnerInstance {
  description: string;
  readonly pod: string;
  deleted: boolean;
}

/** How long `dispose` waits for the pool's pods to disappear before returning anyway. */
const DISPOSE_WAIT_MS = 10_000;

let nextSupervisor = 0;

export class KubernetesBackend implements Backend {
  readonly name = 'kubernetes';
  readonly #o: ResolvedKubernetesOptions;
  readonly #runners = new Map<string, RunnerPod>();
  #logger: Logger = createLogger(false);
  #client: KubernetesClient | undefined;
  #template: RunnerPodTemplate | undefined;
  #watcher: PodWatcher | undefined;
  #supervisor: RunnerPodSupervisor | undefined;
  #cookieSecret: string | undefined;
  #disposed = false;

  /** Validates the options and reads POD_NAME/POD_NAMESPACE (MissingEnvError when absent). */
  constructor(options: KubernetesBackendOptions = {}) {
    this.#o = resolveKubernetesOptions(options);
  }

  async init(context: BackendContext): Promise<void> {
    if (this.#client) {
      throw new InvalidOptionError(`KubernetesBackend: this backend already serves a pool; give pool "${context.pool}" its own (new KubernetesBackend(...))`);
    }
    const o = this.#o;
    this.#logger = o.log === undefined ? context.logger.child('[kubernetes]') : createLogger(o.log, `[pool ${context.pool}] [kubernetes]`);
    const client = KubernetesClient.create(o);
    this.#client = client;
    const [parent] = await Promise.all([this.#readParent(client), this.#checkPermissions(client)]);
    const template = RunnerPodTemplate.fromParent(parent, context.pool, o);
    this.#template = template;
    const supervisor = new RunnerPodSupervisor({
      system: context.node.system,
      name: `kubernetes-${context.pool}-${nextSupervisor++}`,
      logger: this.#logger,
      waitWhenUnschedulable: o.waitWhenUnschedulable,
      runnerExited: (id, reason) => context.runnerExited(id, reason),
    });
    this.#supervisor = supervisor;
    const watcher = new PodWatcher({
      client,
      namespace: o.namespace,
      labelSelector: template.labelSelector,
      logger: this.#logger,
      onEvent: (type, pod) => supervisor.observe(type, pod),
    });
    this.#watcher = watcher;
    try {
      await watcher.start();
      // Pods with our parent's uid and pool are an earlier run's (the app container restarted).
      const leftovers = watcher.pods();
      if (leftovers.length > 0) {
        this.#logger.info(`deleting ${leftovers.length} runner pod(s) left by an earlier run of this parent: ${leftovers.map((p) => p.metadata?.name).join(', ')}`);
        await Promise.all(leftovers.map((p) => client.deletePod(o.namespace, p.metadata!.name!, 0)));
      }
      if (o.cookie === 'secret') await this.#createCookieSecret(client, template, context.node.cookie);
    } catch (error) {
      watcher.stop();
      supervisor.stop();
      throw error;
    }
    this.#logger.debug(`ready: runner pods in namespace ${o.namespace} from pod ${parent.metadata?.name} (container ${template.appContainer.name}, image ${o.image ?? template.appContainer.image})`);
  }

  async boot(spec: RunnerSpec, signal: AbortSignal): Promise<RunnerInstance> {
    const client = this.#client;
    const template = this.#template;
    const supervisor = this.#supervisor;
    if (!client || !template || !supervisor) throw new BootError('KubernetesBackend.boot before init');
    if (this.#disposed) throw new BootError('KubernetesBackend.boot after dispose');
    signal.throwIfAborted();
    const started = performance.now();
    const body = template.podFor(spec, this.#cookieSecret);
    let created: V1Pod;
    try {
      created = await client.createPod(this.#o.namespace, body, signal);
    } catch (error) {
      if (error instanceof KubernetesError) await this.#removeUnconfirmed(client, spec.id, error);
      throw error;
    }
    const name = created.metadata!.name!;
    const runner: RunnerPod = { id: spec.id, pod: name, description: `pod ${name}`, deleted: false };
    this.#runners.set(spec.id, runner);
    this.#logger.debug(`runner ${spec.id}: created pod ${name}`);
    let outcome;
    try {
      outcome = await untilAborted(supervisor.expect(spec.id, name), signal);
    } catch (error) {
      // Abandoned (the pool's boot deadline): nothing of it may stay.
      await this.#remove(runner, 0);
      throw error;
    }
    if (!outcome.ok) {
      await this.#remove(runner, 0);
      throw new BootError(`runner ${spec.id}: ${outcome.reason}`, { details: { pod: name, namespace: this.#o.namespace } });
    }
    runner.description = `pod ${name} (${outcome.ip})`;
    this.#logger.debug(`runner ${spec.id}: pod ${name} running on ${outcome.ip} after ${Math.round(performance.now() - started)} ms`);
    return runner;
  }

  /** Deletes the runner's pod (its grace period lets the runner drain); a pod already gone is fine. */
  async shutdown(instance: RunnerInstance): Promise<void> {
    const runner = this.#runners.get(instance.id) ?? (instance as RunnerPod);
    if (!runner.pod) return;
    await this.#remove(runner, this.#o.deleteGracePeriodSeconds);
  }

  /** Deletes every pod of this pool still there and the cookie Secret, waits (bounded) for them to go, stops watching. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    const client = this.#client;
    const watcher = this.#watcher;
    if (!client || !watcher) return;
    const names = new Set([...this.#runners.values()].map((r) => r.pod));
    for (const pod of watcher.pods()) if (!pod.metadata?.deletionTimestamp) names.add(pod.metadata!.name!);
    await Promise.all([...names].map((name) => this.#deletePod(client, name, this.#o.deleteGracePeriodSeconds)));
    this.#runners.clear();
    if (this.#cookieSecret) {
      await client.deleteSecret(this.#o.namespace, this.#cookieSecret).catch((e: Error) => this.#logger.warn(e.message));
    }
    if (!(await watcher.untilEmpty(DISPOSE_WAIT_MS))) {
      this.#logger.warn(`runner pods still terminating after ${DISPOSE_WAIT_MS} ms: ${watcher.pods().map((p) => p.metadata?.name).join(', ')}`);
    }
    watcher.stop();
    this.#supervisor?.stop();
  }

  async #readParent(client: KubernetesClient): Promise<V1Pod> {
    const { podName, namespace } = this.#o;
    try {
      return await client.readPod(namespace, podName);
    } catch (error) {
      if (error instanceof KubernetesError && error.details.status === 404) {
        throw new KubernetesError(
          `parent pod "${podName}" not found in namespace "${namespace}": POD_NAME and POD_NAMESPACE must name the pod this process runs in (downward API metadata.name and metadata.namespace)`,
          { cause: error, details: error.details },
        );
      }
      throw error;
    }
  }

  /**
   * Asks the API server, once, whether every verb the backend uses is granted, so a missing one
   * fails `Pool.start` instead of the first boot. Skipped when access reviews are unavailable.
   */
  async #checkPermissions(client: KubernetesClient): Promise<void> {
    const needed: [Verb, Resource][] = [['get', 'pods'], ['list', 'pods'], ['watch', 'pods'], ['create', 'pods'], ['delete', 'pods']];
    if (this.#o.cookie === 'secret') needed.push(['create', 'secrets'], ['delete', 'secrets']);
    const answers = await Promise.all(needed.map(([verb, resource]) => client.allowed(this.#o.namespace, verb, resource)));
    const missing = needed.filter((_, i) => answers[i] === false);
    if (missing.length === 0) return;
    const verbs = missing.map(([verb, resource]) => `"${verb}" on "${resource}"`).join(', ');
    const [verb, resource] = missing[0]!;
    throw new KubernetesError(
      `the service account cannot ${missing.map(([v, r]) => `${v} ${r}`).join(', ')} in namespace "${this.#o.namespace}": grant ${verbs} in its Role (see README, Kubernetes backend, RBAC; checked with ${client.credentials})`,
      { details: { status: 403, reason: 'Forbidden', verb, resource, namespace: this.#o.namespace, missing: missing.map(([v, r]) => `${v} ${r}`) } },
    );
  }

  /** One Secret per parent pod and pool; a leftover of an earlier run of this parent is replaced. */
  async #createCookieSecret(client: KubernetesClient, template: RunnerPodTemplate, cookie: string): Promise<void> {
    const body = template.cookieSecret(cookie);
    try {
      await client.createSecret(this.#o.namespace, body);
    } catch (error) {
      if (!(error instanceof KubernetesError && error.details.reason === 'AlreadyExists')) throw error;
      await client.deleteSecret(this.#o.namespace, template.cookieSecretName);
      await client.createSecret(this.#o.namespace, body);
    }
    this.#cookieSecret = template.cookieSecretName;
  }

  async #remove(runner: RunnerPod, gracePeriodSeconds: number | undefined): Promise<void> {
    this.#supervisor?.release(runner.pod);
    this.#runners.delete(runner.id);
    if (runner.deleted || !this.#client) return;
    runner.deleted = true;
    await this.#deletePod(this.#client, runner.pod, gracePeriodSeconds);
  }

  async #deletePod(client: KubernetesClient, name: string, gracePeriodSeconds: number | undefined): Promise<void> {
    try {
      await client.deletePod(this.#o.namespace, name, gracePeriodSeconds);
    } catch (error) {
      this.#logger.warn(`cannot delete runner pod ${name}: ${(error as Error).message}`);
    }
  }

  /**
   * A create that failed with a server error or a lost connection may still have created the
   * pod: look it up by its runner label and delete it.
   */
  async #removeUnconfirmed(client: KubernetesClient, runnerId: string, error: KubernetesError): Promise<void> {
    const status = error.details.status as number;
    if (status !== 0 && status < 500) return;
    try {
      const { items } = await client.listPods(this.#o.namespace, `${this.#template!.labelSelector},${LABELS.runner}=${runnerId}`);
      await Promise.all(items.map((p) => this.#deletePod(client, p.metadata!.name!, 0)));
    } catch {
      // best effort: the pod, if any, is still owned by the parent pod
    }
  }
}

/** `promise`, or a rejection with the signal's reason when it aborts first. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
