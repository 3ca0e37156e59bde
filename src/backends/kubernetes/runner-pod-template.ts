/**
 * How a runner pod is built from the parent pod, once per pool. Compared with FLAMEK8sBackend:
 * our own labels (never the parent's, whose selector labels would let its ReplicaSet adopt and
 * kill runners), an owner reference to the parent pod marked as its controller (so `kubectl drain`
 * and ReplicaSets treat the runner as managed), `serviceAccountName` (not the deprecated field),
 * no service-account token unless asked, a runner container named `runner` put first (sidecars
 * allowed after it), the downward-API variables first so the inherited env may refer to
 * `$(POD_IP)`, a grace period above the pool's drain time, and the parent's scheduling, security
 * and volume settings (see inherit.ts).
 *
 * Precedence, later wins: what is inherited from the parent pod and its app container < the
 * `podTemplate` < the `image`, `resources` and `env` options < what the backend forces (labels,
 * owner, restartPolicy, the token, the POD_* and FLAME_* variables).
 */
import type { V1Container, V1EnvVar, V1OwnerReference, V1Pod, V1PodSpec, V1Secret } from '@kubernetes/client-node';
import { Pod as PodModel } from 'kubernetes-models/v1/Pod';
import { InvalidOptionError } from '../../errors.js';
import type { RunnerSpec } from '../../flame/backend.js';
import { followRenamedContainer, followRenamedEnv, inheritedContainerFields, inheritedPodFields, sanitizeSpec, withoutServing } from './inherit.js';
import type { ResolvedKubernetesOptions } from './options.js';
import { RUNNER_CONTAINER } from './pod-state.js';

export const LABELS = {
  pool: 'flame-actors/pool',
  runner: 'flame-actors/runner',
  parentUid: 'flame-actors/parent-uid',
} as const;

export { RUNNER_CONTAINER };
/** The parent pod's name on runner pods and the cookie Secret, to find a dead parent's leftovers. */
export const PARENT_ANNOTATION = 'flame-actors/parent-pod';
/**
 * Lets the cluster autoscaler remove a node running runner pods: a runner drains in its grace
 * period and the pool boots a replacement elsewhere, so it never pins a node.
 */
export const SAFE_TO_EVICT = 'cluster-autoscaler.kubernetes.io/safe-to-evict';
/** Key of the cookie in the pool's Secret. */
export const COOKIE_KEY = 'FLAME_COOKIE';

/** Variables the backend sets itself from the downward API, first in the list. */
const DOWNWARD_API: readonly V1EnvVar[] = [
  { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
  { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } },
  { name: 'POD_IP', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'status.podIP' } } },
];
const FORCED = new Set(['POD_NAME', 'POD_NAMESPACE', 'POD_IP', 'FLAME_PARENT', 'FLAME_COOKIE']);
/**
 * The parent's own identity: a runner names itself from its runner id and listens on the
 * default port of its pod IP, so these must not be copied from the app container.
 */
const PARENT_IDENTITY = new Set([...FORCED, 'FLAME_PORT', 'FLAME_NODE_NAME', 'RELEASE_NODE']);
/** Room for `-<sequence>` in the runner label (label values are at most 63 characters). */
const MAX_POOL_NAME = 52;
const DRAIN_MARGIN_SECONDS = 5;

export type TemplateOptions = Pick<
  ResolvedKubernetesOptions,
  'containerName' | 'image' | 'env' | 'resources' | 'podTemplate' | 'omitOwnerReference' | 'inherit' | 'automountServiceAccountToken' | 'secretEnv'
>;

export class RunnerPodTemplate {
  readonly parentPod: V1Pod;
  readonly appContainer: V1Container;
  readonly pool: string;
  readonly namespace: string;
  /** Selects the runner pods of this pool and parent (and nothing else). */
  readonly labelSelector: string;
  readonly #options: TemplateOptions;
  readonly #owner: V1OwnerReference;

  private constructor(parentPod: V1Pod, appContainer: V1Container, pool: string, options: TemplateOptions) {
    this.parentPod = parentPod;
    this.appContainer = appContainer;
    this.pool = pool;
    this.namespace = parentPod.metadata!.namespace!;
    this.#options = options;
    this.#owner = { apiVersion: 'v1', kind: 'Pod', name: parentPod.metadata!.name!, uid: parentPod.metadata!.uid!, controller: true };
    this.labelSelector = `${LABELS.pool}=${pool},${LABELS.parentUid}=${this.#owner.uid}`;
  }

  /**
   * Picks the app container (`containerName`, else the first) and checks, once, that the pods
   * this template builds are valid, so a bad `podTemplate` fails `Pool.start` and not every boot.
   */
  static fromParent(parentPod: V1Pod, pool: string, options: TemplateOptions): RunnerPodTemplate {
    const name = parentPod.metadata?.name;
    if (!name || !parentPod.metadata?.uid || !parentPod.metadata.namespace) {
      throw new InvalidOptionError('KubernetesBackend: the parent pod has no name, uid or namespace');
    }
    if (pool.length > MAX_POOL_NAME) {
      throw new InvalidOptionError(`KubernetesBackend: pool name "${pool}" is ${pool.length} characters; at most ${MAX_POOL_NAME} fit in a Kubernetes label with the runner sequence`, {
        details: { option: 'name', expected: `at most ${MAX_POOL_NAME} characters` },
      });
    }
    const containers = parentPod.spec?.containers ?? [];
    const wanted = options.containerName;
    const appContainer = wanted === undefined ? containers[0] : containers.find((c) => c.name === wanted);
    if (!appContainer) {
      throw new InvalidOptionError(
        wanted === undefined
          ? `KubernetesBackend: parent pod "${name}" has no containers`
          : `new KubernetesBackend: option "containerName" must name a container of pod "${name}": one of ${containers.map((c) => JSON.stringify(c.name)).join(', ')} (got ${JSON.stringify(wanted)})`,
        { details: { option: 'containerName', allowed: containers.map((c) => c.name) } },
      );
    }
    const template = new RunnerPodTemplate(parentPod, appContainer, pool, options);
    template.#validate();
    return template;
  }

  /** Labels of one runner's pod. */
  labels(runnerId: string): Record<string, string> {
    return { [LABELS.pool]: this.pool, [LABELS.runner]: runnerId, [LABELS.parentUid]: this.#owner.uid };
  }

  /** The Secret holding the cookie and the `secretEnv` values, shared by the pool's runner pods; owned by the parent pod. */
  cookieSecret(cookie: string): V1Secret {
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: this.cookieSecretName,
        namespace: this.namespace,
        labels: { [LABELS.pool]: this.pool, [LABELS.parentUid]: this.#owner.uid },
        annotations: { [PARENT_ANNOTATION]: this.#owner.name },
        ...(this.#options.omitOwnerReference ? {} : { ownerReferences: [this.#owner] }),
      },
      type: 'Opaque',
      stringData: { ...this.#options.secretEnv, [COOKIE_KEY]: cookie },
    };
  }

  /** One per parent pod and pool: a restarted parent container finds and replaces its own. */
  get cookieSecretName(): string {
    return RunnerPodTemplate.cookieSecretNameFor(this.#owner.name, this.pool);
  }

  static cookieSecretNameFor(parentPod: string, pool: string): string {
    return `${parentPod}-${pool}-flame-cookie`.slice(0, 253).replace(/[-.]+$/, '');
  }

  /**
   * The pod of one runner. `cookieSecret` names the Secret holding the cookie; without it the
   * cookie goes in the pod spec as a plain value.
   */
  podFor(spec: RunnerSpec, cookieSecret?: string): V1Pod {
    const base = this.#base();
    const metadata = base.metadata ?? {};
    const baseSpec: V1PodSpec = base.spec ?? { containers: [] };
    const templateContainers = baseSpec.containers ?? [];
    const app = this.appContainer;
    const runnerIndex = runnerContainerIndex(templateContainers, app.name);
    const fromTemplate: Partial<V1Container> = runnerIndex >= 0 ? templateContainers[runnerIndex]! : {};
    const sidecars = templateContainers.filter((_, i) => i !== runnerIndex);
    const parentSpec = this.parentPod.spec ?? { containers: [] };
    const inherit = this.#options.inherit;

    const runner: V1Container = withoutServing({
      ...pick(app, ['image', 'imagePullPolicy', 'command', 'args', 'workingDir', 'resources']),
      ...inheritedContainerFields(app, parentSpec, inherit),
      ...withoutUndefined(fromTemplate),
      name: RUNNER_CONTAINER,
      env: this.#env(spec, fromTemplate.env ?? [], cookieSecret),
    });
    const envFrom = [...(app.envFrom ?? []), ...(fromTemplate.envFrom ?? [])];
    if (envFrom.length > 0) runner.envFrom = envFrom;
    else delete runner.envFrom;
    if (this.#options.image !== undefined) runner.image = this.#options.image;
    if (this.#options.resources !== undefined) runner.resources = this.#options.resources;

    const drainSeconds = Math.ceil(spec.shutdownTimeout / 1000) + DRAIN_MARGIN_SECONDS;
    const podSpec: V1PodSpec = {
      ...inheritedPodFields(parentSpec, inherit),
      ...baseSpec,
      containers: [runner, ...sidecars],
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: Math.max(baseSpec.terminationGracePeriodSeconds ?? 0, drainSeconds),
      automountServiceAccountToken: this.#options.automountServiceAccountToken,
    };
    const account = baseSpec.serviceAccountName ?? baseSpec.serviceAccount ?? parentSpec.serviceAccountName ?? parentSpec.serviceAccount;
    delete podSpec.serviceAccount;
    if (account !== undefined) podSpec.serviceAccountName = account;
    const pullSecrets = baseSpec.imagePullSecrets ?? parentSpec.imagePullSecrets;
    if (pullSecrets !== undefined) podSpec.imagePullSecrets = pullSecrets;
    // A downward-API volume may name the app container too (`resourceFieldRef.containerName`).
    if (podSpec.volumes) podSpec.volumes = followRenamedContainer(structuredClone(podSpec.volumes), app.name, RUNNER_CONTAINER);

    // The parent's own owners (its ReplicaSet) would count the runner as one of their replicas.
    const parentOwners = new Set((this.parentPod.metadata?.ownerReferences ?? []).map((o) => o.uid));
    const owners = (metadata.ownerReferences ?? []).filter((o) => o.uid !== this.#owner.uid && !parentOwners.has(o.uid));
    if (!this.#options.omitOwnerReference) owners.push(owners.some((o) => o.controller) ? { ...this.#owner, controller: false } : this.#owner);
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: `${this.#owner.name}-${this.pool}-`,
        namespace: this.namespace,
        labels: { ...(metadata.labels ?? {}), ...this.labels(spec.id) },
        annotations: { [SAFE_TO_EVICT]: 'true', ...(metadata.annotations ?? {}), [PARENT_ANNOTATION]: this.#owner.name },
        ...(owners.length > 0 ? { ownerReferences: owners } : {}),
      },
      spec: podSpec,
    };
  }

  /** POD_* first; then the app's, the template's and the `env` option's (the only way to set FLAME_PORT); FLAME_* last. */
  #env(spec: RunnerSpec, templateEnv: V1EnvVar[], cookieSecret: string | undefined): V1EnvVar[] {
    const env = new OrderedEnv();
    for (const v of DOWNWARD_API) env.set(structuredClone(v));
    const app = this.appContainer.name;
    for (const v of followRenamedEnv(this.appContainer.env ?? [], app, RUNNER_CONTAINER)) if (!PARENT_IDENTITY.has(v.name)) env.set(v);
    // A template often spreads the app container (`{ ...app }`): its identity stays behind too.
    for (const v of followRenamedEnv(templateEnv, app, RUNNER_CONTAINER)) if (!PARENT_IDENTITY.has(v.name)) env.set(v);
    for (const [name, value] of Object.entries(this.#options.env)) if (!FORCED.has(name)) env.set({ name, value });
    // Secret values only by reference: the pod spec never holds them.
    for (const name of Object.keys(this.#options.secretEnv)) {
      if (cookieSecret !== undefined) env.set({ name, valueFrom: { secretKeyRef: { name: cookieSecret, key: name } } });
    }
    for (const [name, value] of Object.entries(spec.env)) {
      if (name === COOKIE_KEY && cookieSecret !== undefined) {
        env.set({ name, valueFrom: { secretKeyRef: { name: cookieSecret, key: COOKIE_KEY } } });
      } else {
        env.set({ name, value });
      }
    }
    return env.list();
  }

  /** The user's starting point, stripped of what belongs to another object (name, uid, status...). */
  #base(): V1Pod {
    const template = this.#options.podTemplate;
    if (template === undefined) return {};
    let pod: V1Pod;
    try {
      pod = typeof template === 'function' ? template(structuredClone(this.parentPod), structuredClone(this.appContainer)) : template;
    } catch (error) {
      throw new InvalidOptionError(`new KubernetesBackend: option "podTemplate" threw: ${(error as Error).message}`, { cause: error });
    }
    if (typeof pod !== 'object' || pod === null) {
      throw new InvalidOptionError(`new KubernetesBackend: option "podTemplate" must return a pod object (got ${String(pod)})`, {
        details: { option: 'podTemplate', expected: 'a pod object' },
      });
    }
    const copy = structuredClone(pod);
    const m = copy.metadata;
    return {
      ...(m ? { metadata: pickDefined({ labels: m.labels, annotations: m.annotations, ownerReferences: m.ownerReferences }) } : {}),
      ...(copy.spec ? { spec: sanitizeSpec(copy.spec) } : {}),
    };
  }

  #validate(): void {
    const sample = this.podFor({ id: `${this.pool}-1`, env: { FLAME_PARENT: 'x', FLAME_COOKIE: 'x' }, shutdownTimeout: 30_000 });
    if (!sample.spec!.containers[0]!.image) {
      throw new InvalidOptionError(`KubernetesBackend: no image for the runner container: the app container "${this.appContainer.name}" has none; pass { image }`, {
        details: { option: 'image', expected: 'an image name' },
      });
    }
    try {
      new PodModel(JSON.parse(JSON.stringify(sample)) as ConstructorParameters<typeof PodModel>[0]).validate();
    } catch (error) {
      const errors = (error as { errors?: { instancePath?: string; message?: string }[] }).errors ?? [];
      const why = errors.length > 0 ? errors.map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`).join('; ') : (error as Error).message;
      throw new InvalidOptionError(`KubernetesBackend: the runner pod built from the parent pod and the options is invalid: ${why}`, {
        cause: error,
        details: { option: 'podTemplate', expected: 'a valid pod' },
      });
    }
  }
}

/** The template container named `runner`, else the one named as the app container (`containerName`), else the first, or -1. */
function runnerContainerIndex(containers: V1Container[], appName: string): number {
  const named = containers.findIndex((c) => c.name === RUNNER_CONTAINER);
  if (named >= 0) return named;
  const app = containers.findIndex((c) => c.name === appName);
  return app >= 0 ? app : containers.length > 0 ? 0 : -1;
}

/** An env list where setting a name again moves it to the end (Kubernetes expands `$(VAR)` only from earlier entries). */
class OrderedEnv {
  readonly #vars = new Map<string, V1EnvVar>();
  set(v: V1EnvVar): void {
    this.#vars.delete(v.name);
    this.#vars.set(v.name, v);
  }
  list(): V1EnvVar[] {
    return [...this.#vars.values()];
  }
}

function pick<T extends object, K extends keyof T>(object: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (object[key] !== undefined) out[key] = structuredClone(object[key]);
  return out;
}

function withoutUndefined<T extends object>(object: T): Partial<T> {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function pickDefined<T extends object>(object: T): T {
  return withoutUndefined(object) as T;
}
