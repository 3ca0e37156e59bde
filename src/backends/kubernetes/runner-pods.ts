/**
 * The Kubernetes backend at work, for one pool: loaded by `KubernetesBackend.init` with a dynamic
 * import, so an app that never starts a Kubernetes pool never loads `@kubernetes/client-node` or
 * `kubernetes-models` (about 0.6 s and 100 MB, also on every runner of every other backend).
 *
 * `start` checks the service account's permissions, reads the parent pod once, checks that runner
 * pods can reach the parent's node, starts one watch on the pool's pods and hands its events to the
 * supervisor actor. `boot` creates a pod and waits until it runs with an IP or cannot start;
 * whatever it created is deleted when the boot fails or is abandoned.
 */
import { isIP } from 'node:net';
import type { V1Pod } from '@kubernetes/client-node';
import { backoffDelay, type BackoffPolicy } from '../../backoff.js';
import { BootError, KubernetesError, MissingEnvError } from '../../errors.js';
import type { BackendContext, RunnerInstance, RunnerSpec } from '../../flame/backend.js';
import type { Logger } from '../../log.js';
import { KubernetesClient, type Resource, type Verb } from './client.js';
import type { ResolvedKubernetesOptions } from './options.js';
import { PodWatcher } from './pod-watcher.js';
import { LABELS, PARENT_ANNOTATION, RunnerPodTemplate } from './runner-pod-template.js';
import { RunnerPodSupervisor } from './supervisor.js';

/** A runner's pod, as the backend tracks it. */
interface RunnerPod extends RunnerInstance {
  description: string;
  readonly pod: string;
  deleted: boolean;
}

/** What `dispose` could not delete before its deadline. */
export interface Leftovers {
  pods: string[];
  secret: string | undefined;
}

/** How long `dispose` keeps deleting and waits for the pool's pods to go, at most. */
const DISPOSE_WAIT_MS = 10_000;
/** A booting pod the watch has said nothing about for this long is read directly. */
const QUIET_MS = 3000;
/** How often a boot checks whether its pod has gone quiet. */
const PROBE_EVERY_MS = 1000;
/** Retries of deletes while the pool stops. */
const DELETE_BACKOFF: BackoffPolicy = { baseMs: 100, maxMs: 2000 };
const DEFAULT_GRACE_SECONDS = 30;

let nextSupervisor = 0;

export class RunnerPods {
  readonly #o: ResolvedKubernetesOptions;
  readonly #logger: Logger;
  readonly #client: KubernetesClient;
  readonly #template: RunnerPodTemplate;
  readonly #watcher: PodWatcher;
  readonly #supervisor: RunnerPodSupervisor;
  readonly #runners = new Map<string, RunnerPod>();
  /** Pods whose boot is under way, by runner id. */
  readonly #booting = new Map<string, string>();
  #cookieSecret: string | undefined;
  #disposed = false;

  private constructor(o: ResolvedKubernetesOptions, logger: Logger, client: KubernetesClient, template: RunnerPodTemplate, watcher: PodWatcher, supervisor: RunnerPodSupervisor) {
    this.#o = o;
    this.#logger = logger;
    this.#client = client;
    this.#template = template;
    this.#watcher = watcher;
    this.#supervisor = supervisor;
  }

  static async start(o: ResolvedKubernetesOptions, context: BackendContext, logger: Logger): Promise<RunnerPods> {
    const client = KubernetesClient.create(o);
    const [parent] = await Promise.all([readParent(client, o), checkPermissions(client, o)]);
    checkParentAddress(parent, context.node.address.host);
    const template = RunnerPodTemplate.fromParent(parent, context.pool, o);
    const supervisor = new RunnerPodSupervisor({
      system: context.node.system,
      name: `kubernetes-${context.pool}-${nextSupervisor++}`,
      logger,
      waitWhenUnschedulable: o.waitWhenUnschedulable,
      imagePullTimeout: o.imagePullTimeout,
      runnerExited: (id, reason) => context.runnerExited(id, reason),
    });
    const watcher = new PodWatcher({
      client,
      namespace: o.namespace,
      labelSelector: template.labelSelector,
      logger,
      onEvent: (type, pod) => supervisor.observe(type, pod),
    });
    const pods = new RunnerPods(o, logger, client, template, watcher, supervisor);
    try {
      await watcher.start();
      await pods.#sweep();
      if (o.cookie === 'secret') await pods.#createCookieSecret(context.node.cookie);
    } catch (error) {
      watcher.stop();
      supervisor.stop();
      throw error;
    }
    logger.debug(`ready: runner pods in namespace ${o.namespace} from pod ${parent.metadata?.name} (container ${template.appContainer.name}, image ${o.image ?? template.appContainer.image})`);
    return pods;
  }

  /** The parent pod's `terminationGracePeriodSeconds` (30 when it sets none, as Kubernetes). */
  get parentGracePeriodSeconds(): number {
    return this.#template.parentPod.spec?.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS;
  }

  async boot(spec: RunnerSpec, signal: AbortSignal): Promise<RunnerInstance> {
    if (this.#disposed) throw new BootError('KubernetesBackend.boot after dispose');
    signal.throwIfAborted();
    const started = performance.now();
    const body = this.#template.podFor(spec, this.#cookieSecret);
    let created: V1Pod;
    try {
      created = await this.#client.createPod(this.#o.namespace, body, signal);
    } catch (error) {
      if (error instanceof KubernetesError) await this.#removeUnconfirmed(spec.id, error);
      throw error;
    }
    const name = created.metadata!.name!;
    const runner: RunnerPod = { id: spec.id, pod: name, description: `pod ${name}`, deleted: false };
    this.#runners.set(spec.id, runner);
    this.#booting.set(spec.id, name);
    this.#logger.debug(`runner ${spec.id}: created pod ${name}`);
    const stopProbing = this.#probeWhileQuiet(name);
    let outcome;
    try {
      outcome = await untilAborted(this.#supervisor.expect(spec.id, name), signal);
    } catch (error) {
      // Abandoned (the pool's boot deadline): nothing of it may stay.
      await this.#remove(runner, 0);
      throw error;
    } finally {
      stopProbing();
      this.#booting.delete(spec.id);
    }
    if (!outcome.ok) {
      await this.#remove(runner, 0);
      throw new BootError(`runner ${spec.id}: ${outcome.reason}`, { details: { pod: name, namespace: this.#o.namespace } });
    }
    runner.description = `pod ${name} (${outcome.ip})`;
    this.#logger.debug(`runner ${spec.id}: pod ${name} running on ${outcome.ip} after ${Math.round(performance.now() - started)} ms`);
    return runner;
  }

  /** What a booting runner's pod waits for (for a boot that times out). */
  describeBoot(runnerId: string): string | undefined {
    const pod = this.#booting.get(runnerId) ?? this.#runners.get(runnerId)?.pod;
    if (!pod) return undefined;
    const waiting = this.#supervisor.waitingFor(pod);
    return `pod ${pod}${waiting ? ` was waiting for ${waiting}` : ''}`;
  }

  /** Deletes the runner's pod (its grace period lets the runner drain); a pod already gone is fine. */
  async shutdown(instance: RunnerInstance): Promise<void> {
    const runner = this.#runners.get(instance.id) ?? (instance as RunnerPod);
    if (!runner.pod) return;
    await this.#remove(runner, this.#o.deleteGracePeriodSeconds);
  }

  /**
   * Deletes every pod of this pool and the cookie Secret, retrying failed deletes until
   * `deadlineMs`, waits (within it) for the pods to go, stops watching, and returns what is left.
   */
  async dispose(deadlineMs = DISPOSE_WAIT_MS, gracePeriodSeconds = this.#o.deleteGracePeriodSeconds): Promise<Leftovers> {
    this.#disposed = true;
    const deadline = performance.now() + deadlineMs;
    const names = new Set([...this.#runners.values()].filter((r) => !r.deleted).map((r) => r.pod));
    // Pods already terminating are left to their grace period, unless this is a forced clean-up.
    for (const pod of this.#watcher.pods()) if (!pod.metadata?.deletionTimestamp || gracePeriodSeconds === 0) names.add(pod.metadata!.name!);
    this.#runners.clear();
    const [pods, secretLeft] = await Promise.all([
      Promise.all([...names].map((name) => this.#retryUntil(deadline, `runner pod ${name}`, () => this.#client.deletePod(this.#o.namespace, name, gracePeriodSeconds)))),
      this.#cookieSecret
        ? this.#retryUntil(deadline, `Secret ${this.#cookieSecret}`, () => this.#client.deleteSecret(this.#o.namespace, this.#cookieSecret!))
        : Promise.resolve(true),
    ]);
    const undeleted = [...names].filter((_, i) => !pods[i]);
    const gone = await this.#watcher.untilEmpty(Math.max(0, deadline - performance.now()));
    this.#watcher.stop();
    this.#supervisor.stop();
    const left: Leftovers = {
      pods: gone ? undeleted : [...new Set([...undeleted, ...this.#watcher.pods().map((p) => p.metadata!.name!)])],
      secret: secretLeft ? undefined : this.#cookieSecret,
    };
    if (left.pods.length > 0 || left.secret) {
      this.#logger.warn(
        `left behind after ${deadlineMs} ms: ${[...left.pods.map((p) => `pod ${p}`), ...(left.secret ? [`Secret ${left.secret}`] : [])].join(', ')}` +
          ` (owned by the parent pod, so deleted with it; else: kubectl delete pod,secret -n ${this.#o.namespace} -l ${LABELS.pool}=${this.#template.pool})`,
      );
    }
    return left;
  }

  /** Runs `attempt` until it succeeds or the deadline passes (then false); a 404 counts as done. */
  async #retryUntil(deadline: number, what: string, attempt: () => Promise<unknown>): Promise<boolean> {
    for (let failures = 1; failures < 10_000; failures++) {
      try {
        await attempt();
        return true;
      } catch (error) {
        const delay = backoffDelay(DELETE_BACKOFF, failures);
        if (performance.now() + delay >= deadline) {
          this.#logger.warn(`cannot delete ${what}: ${(error as Error).message}`);
          return false;
        }
        this.#logger.debug(`deleting ${what} failed (${(error as Error).message}); retrying in ${Math.round(delay)} ms`);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
    return false;
  }

  /**
   * Reads a booting pod directly whenever the watch has said nothing about it for a few seconds,
   * so a watch that died silently (no FIN) never stalls a boot: the read is fed to the supervisor
   * as an observation, and a 404 as a deletion.
   */
  #probeWhileQuiet(name: string): () => void {
    let reading = false;
    const timer = setInterval(() => {
      if (reading || this.#supervisor.quietFor(name) < QUIET_MS) return;
      reading = true;
      this.#client.readPod(this.#o.namespace, name).then(
        (pod) => this.#supervisor.observe('MODIFIED', pod),
        (error: unknown) => {
          if (error instanceof KubernetesError && error.statusCode === 404) this.#supervisor.observe('DELETED', { metadata: { name } });
          else this.#logger.debug(`reading pod ${name}: ${(error as Error).message}`);
        },
      ).finally(() => (reading = false));
    }, PROBE_EVERY_MS);
    timer.unref();
    return () => clearInterval(timer);
  }

  /**
   * Pods of an earlier run of this parent (its container restarted) are deleted. With
   * `omitOwnerReference`, nothing deletes the runner pods of a parent pod that is gone, so they
   * are deleted too, with that parent's cookie Secret.
   */
  async #sweep(): Promise<void> {
    const leftovers = this.#watcher.pods();
    if (leftovers.length > 0) {
      this.#logger.info(`deleting ${leftovers.length} runner pod(s) left by an earlier run of this parent: ${leftovers.map((p) => p.metadata?.name).join(', ')}`);
      await Promise.all(leftovers.map((p) => this.#deletePod(p.metadata!.name!, 0)));
    }
    if (!this.#o.omitOwnerReference) return;
    const { items } = await this.#client.listPods(this.#o.namespace, `${LABELS.pool}=${this.#template.pool},${LABELS.parentUid}!=${this.#template.parentPod.metadata!.uid}`);
    const byParent = new Map<string, { name: string; pods: string[] }>();
    for (const pod of items) {
      const uid = pod.metadata?.labels?.[LABELS.parentUid];
      const parent = pod.metadata?.annotations?.[PARENT_ANNOTATION];
      if (!uid || !parent) continue;
      const entry = byParent.get(uid) ?? { name: parent, pods: [] };
      entry.pods.push(pod.metadata!.name!);
      byParent.set(uid, entry);
    }
    for (const [uid, { name, pods }] of byParent) {
      const alive = await this.#client.readPod(this.#o.namespace, name).then((p) => p.metadata?.uid === uid, (e: unknown) => !(e instanceof KubernetesError && e.statusCode === 404));
      if (alive) continue;
      this.#logger.info(`deleting ${pods.length} runner pod(s) of parent pod ${name}, which is gone: ${pods.join(', ')}`);
      await Promise.all(pods.map((p) => this.#deletePod(p, 0)));
      await this.#client.deleteSecret(this.#o.namespace, RunnerPodTemplate.cookieSecretNameFor(name, this.#template.pool)).catch((e: Error) => this.#logger.debug(e.message));
    }
  }

  /** One Secret per parent pod and pool; a leftover of an earlier run of this parent is replaced. */
  async #createCookieSecret(cookie: string): Promise<void> {
    const body = this.#template.cookieSecret(cookie);
    try {
      await this.#client.createSecret(this.#o.namespace, body);
    } catch (error) {
      if (!(error instanceof KubernetesError && error.reason === 'AlreadyExists')) throw error;
      await this.#client.deleteSecret(this.#o.namespace, this.#template.cookieSecretName);
      await this.#client.createSecret(this.#o.namespace, body);
    }
    this.#cookieSecret = this.#template.cookieSecretName;
  }

  async #remove(runner: RunnerPod, gracePeriodSeconds: number | undefined): Promise<void> {
    this.#supervisor.release(runner.pod);
    this.#runners.delete(runner.id);
    if (runner.deleted) return;
    runner.deleted = true;
    await this.#deletePod(runner.pod, gracePeriodSeconds);
  }

  async #deletePod(name: string, gracePeriodSeconds: number | undefined): Promise<void> {
    try {
      await this.#client.deletePod(this.#o.namespace, name, gracePeriodSeconds);
    } catch (error) {
      this.#logger.warn(`cannot delete runner pod ${name}: ${(error as Error).message}`);
    }
  }

  /**
   * A create that failed with a server error or a lost connection may still have created the
   * pod: look it up by its runner label and delete it.
   */
  async #removeUnconfirmed(runnerId: string, error: KubernetesError): Promise<void> {
    if (error.statusCode !== 0 && error.statusCode < 500) return;
    try {
      const { items } = await this.#client.listPods(this.#o.namespace, `${this.#template.labelSelector},${LABELS.runner}=${runnerId}`);
      await Promise.all(items.map((p) => this.#deletePod(p.metadata!.name!, 0)));
    } catch {
      // best effort: the pod, if any, is still owned by the parent pod
    }
  }
}

async function readParent(client: KubernetesClient, o: ResolvedKubernetesOptions): Promise<V1Pod> {
  const { podName, namespace } = o;
  try {
    return await client.readPod(namespace, podName);
  } catch (error) {
    if (error instanceof KubernetesError && error.statusCode === 404) {
      throw new KubernetesError(
        `parent pod "${podName}" not found in namespace "${namespace}": POD_NAME and POD_NAMESPACE must name the pod this process runs in (downward API metadata.name and metadata.namespace)`,
        { cause: error, details: error.details },
      );
    }
    throw error;
  }
}

/** Every verb the backend uses, on what: the Role of deploy/kubernetes grants exactly these. */
export function requiredPermissions(secret = true): [Verb, Resource][] {
  const needed: [Verb, Resource][] = [['get', 'pods'], ['list', 'pods'], ['watch', 'pods'], ['create', 'pods'], ['delete', 'pods']];
  if (secret) needed.push(['create', 'secrets'], ['delete', 'secrets']);
  return needed;
}

/**
 * Asks the API server, once, whether every verb the backend uses is granted, so a missing one
 * fails `Pool.start` instead of the first boot. Skipped when access reviews are unavailable.
 */
async function checkPermissions(client: KubernetesClient, o: ResolvedKubernetesOptions): Promise<void> {
  const needed = requiredPermissions(o.cookie === 'secret');
  const answers = await Promise.all(needed.map(([verb, resource]) => client.allowed(o.namespace, verb, resource)));
  const missing = needed.filter((_, i) => answers[i] === false);
  if (missing.length === 0) return;
  const verbs = missing.map(([verb, resource]) => `"${verb}" on "${resource}"`).join(', ');
  const [verb, resource] = missing[0]!;
  throw new KubernetesError(
    `the service account cannot ${missing.map(([v, r]) => `${v} ${r}`).join(', ')} in namespace "${o.namespace}": grant ${verbs} in its Role (see README, Kubernetes backend, RBAC; checked with ${client.credentials})`,
    { statusCode: 403, reason: 'Forbidden', refusal: 'rbac', verb, resource, namespace: o.namespace, details: { missing: missing.map(([v, r]) => `${v} ${r}`) } },
  );
}

export const POD_IP_SNIPPET = `add to the app container of your Deployment:
  env:
    - name: POD_IP
      valueFrom: { fieldRef: { fieldPath: status.podIP } }
    - name: FLAME_NODE_NAME
      value: app@$(POD_IP)`;

/**
 * Runner pods dial the parent node's host: it must be the parent pod's IP (a loopback or
 * unspecified address is reachable only inside the parent pod, so every runner would fail to
 * connect and exit). A host name (a headless Service) is trusted.
 */
export function checkParentAddress(parent: V1Pod, host: string): void {
  const podIPs = new Set([parent.status?.podIP, ...(parent.status?.podIPs ?? []).map((p) => p.ip)].filter((ip): ip is string => !!ip));
  if (podIPs.size === 0 || isIP(host) === 0 || podIPs.has(host)) return;
  throw new MissingEnvError(
    `KubernetesBackend: the parent node listens on ${host}, which runner pods cannot reach (the parent pod's IP is ${[...podIPs].join(', ')}): ` +
      `POD_IP is not set, or FLAME_NODE_NAME/RELEASE_NODE names another host; ${POD_IP_SNIPPET}`,
    { details: { variable: 'POD_IP', host, podIPs: [...podIPs] } },
  );
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
