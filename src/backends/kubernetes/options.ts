/**
 * KubernetesBackend options: types, defaults (in one place) and validation, done once when the
 * backend is constructed. FLAMEK8sBackend's `container_name`, `log` and `token_path` become
 * `containerName`, `log` and `tokenPath`; the rest are ours. This module loads no Kubernetes
 * library (types only), so constructing a backend stays cheap and synchronous.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Container, V1Pod, V1ResourceRequirements } from '@kubernetes/client-node';
import { MissingEnvError } from '../../errors.js';
import { INHERITED_SETTINGS, type InheritedSetting } from './inherit.js';
import { LOG_LEVELS, type LogLevel } from '../../log.js';
import { OptionReader } from '../../validate.js';

/**
 * The base of every runner pod: a (partial) pod, or a function building one from the parent pod
 * and its app container. Our fields are applied over it (see RunnerPodTemplate).
 */
export type PodTemplate = V1Pod | ((parentPod: V1Pod, appContainer: V1Container) => V1Pod);

/** How runners get the parent's cookie. */
export type CookieDelivery = 'secret' | 'env';

export interface KubernetesBackendOptions {
  /** The parent pod's container running this app (env, image, resources are read from it). Default: the first container. */
  containerName?: string;
  /** The backend's own log level, or false. Default: the pool's. */
  log?: LogLevel | false;
  /** Folder of the service-account files `token`, `ca.crt`, `namespace`. Default `/var/run/secrets/kubernetes.io/serviceaccount`. */
  tokenPath?: string;
  /** A kubeconfig file to use instead of the in-cluster service account (a laptop, tests). */
  kubeconfig?: string;
  /** The parent pod's name. Default: `POD_NAME`. */
  podName?: string;
  /** The parent pod's namespace, where runner pods go. Default: `POD_NAMESPACE`, else the service account's namespace. */
  namespace?: string;
  /** Runner image. Default: the app container's image (the same build, as FLAME requires). */
  image?: string;
  /** Extra runner environment, after what is inherited from the app container. */
  env?: Record<string, string>;
  /** Runner container resources. Default: the app container's. */
  resources?: V1ResourceRequirements;
  /** Starting point of runner pods: a partial pod, or `(parentPod, appContainer) => pod`. */
  podTemplate?: PodTemplate;
  /** Leave out the ownerReference to the parent pod (runner pods then outlive it). Default false. */
  omitOwnerReference?: boolean;
  /** Grace period of runner pod deletions, in seconds. Default: the pod's `terminationGracePeriodSeconds`. */
  deleteGracePeriodSeconds?: number;
  /**
   * `'secret'` (default): the cookie goes into one Secret per pool, which runner pods reference, so
   * it is not readable by everyone who may read pods. `'env'`: a plain value in each pod's spec
   * (no Secret permissions needed).
   */
  cookie?: CookieDelivery;
  /**
   * Keep waiting (up to the pool's `bootTimeout`) while a runner pod is Unschedulable, as clusters
   * whose autoscaler adds nodes on demand need. Default true; false fails the boot at once.
   */
  waitWhenUnschedulable?: boolean;
  /**
   * The parent pod's settings runner pods inherit: any of `nodeSelector`, `tolerations`,
   * `affinity`, `securityContext` (pod and container), `volumes` (with the app container's
   * `volumeMounts`), `priorityClassName`, `runtimeClassName`, `dns` (`dnsPolicy`, `dnsConfig`),
   * `hostAliases`, `enableServiceLinks`. Default: all of them.
   */
  inherit?: readonly InheritedSetting[];
  /**
   * How long, in ms, a runner pod may keep failing to pull its image (the kubelet retries with
   * back-off: a registry hiccup heals) before its boot fails. Default 30 s; a boot also fails
   * after three failed pull attempts.
   */
  imagePullTimeout?: number;
  /**
   * Encrypt the links between the parent and its runner pods (TLS 1.3 with ephemeral certificates,
   * cookie proofs bound to the session): the pool's shared parent node and its runners use
   * `tls: 'auto'`. Default true: pod networks are shared. A pool given its own `node` follows it.
   */
  encryptLinks?: boolean;
  /** Mount a service-account token in runner pods. Default false: runners never call the API. */
  automountServiceAccountToken?: boolean;
  /**
   * Secret variables for runners (`{ API_KEY: '...' }`): stored in the pool's Secret with the
   * cookie and referenced with `secretKeyRef`, never written in the pod spec.
   */
  secretEnv?: Record<string, string>;
}

export const KUBERNETES_DEFAULTS = {
  tokenPath: '/var/run/secrets/kubernetes.io/serviceaccount',
  omitOwnerReference: false,
  cookie: 'secret' as CookieDelivery,
  waitWhenUnschedulable: true,
  automountServiceAccountToken: false,
  encryptLinks: true,
  imagePullTimeout: 30_000,
  /**
   * The pool's `bootTimeout` unless it sets one: 5 minutes, room for a cluster autoscaler to add a
   * node (one to three minutes on the big clouds), pull the image onto it (tens of seconds) and
   * start the app; boots that cannot succeed fail long before (see runner-pod states).
   */
  bootTimeout: 300_000,
} as const;

export interface ResolvedKubernetesOptions {
  containerName: string | undefined;
  log: LogLevel | false | undefined;
  tokenPath: string;
  kubeconfig: string | undefined;
  podName: string;
  namespace: string;
  image: string | undefined;
  env: Record<string, string>;
  resources: V1ResourceRequirements | undefined;
  podTemplate: PodTemplate | undefined;
  omitOwnerReference: boolean;
  deleteGracePeriodSeconds: number | undefined;
  cookie: CookieDelivery;
  waitWhenUnschedulable: boolean;
  inherit: ReadonlySet<InheritedSetting>;
  automountServiceAccountToken: boolean;
  secretEnv: Record<string, string>;
  imagePullTimeout: number;
  encryptLinks: boolean;
}

const KEYS = [
  'containerName', 'log', 'tokenPath', 'kubeconfig', 'podName', 'namespace', 'image', 'env', 'resources',
  'podTemplate', 'omitOwnerReference', 'deleteGracePeriodSeconds', 'cookie', 'waitWhenUnschedulable', 'inherit',
  'automountServiceAccountToken', 'secretEnv', 'imagePullTimeout', 'encryptLinks',
] as const;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

export const DOWNWARD_API_SNIPPET = `add to the app container of your Deployment:
  env:
    - name: POD_NAME
      valueFrom: { fieldRef: { fieldPath: metadata.name } }
    - name: POD_NAMESPACE
      valueFrom: { fieldRef: { fieldPath: metadata.namespace } }`;

const WHERE = 'new KubernetesBackend';

export function resolveKubernetesOptions(input: KubernetesBackendOptions | undefined, env: NodeJS.ProcessEnv = process.env): ResolvedKubernetesOptions {
  const r = new OptionReader(WHERE, input, KEYS);
  const log = r.raw('log');
  if (log !== undefined && log !== false && !LOG_LEVELS.includes(log as LogLevel)) {
    r.fail('log', `false or one of ${LOG_LEVELS.map((l) => JSON.stringify(l)).join(', ')}`);
  }
  const tokenPath = r.string('tokenPath', KUBERNETES_DEFAULTS.tokenPath);
  const kubeconfig = r.optionalString('kubeconfig');
  if (kubeconfig !== undefined && !existsSync(kubeconfig)) r.fail('kubeconfig', 'the path of an existing kubeconfig file');

  const podName = r.optionalString('podName', DNS_SUBDOMAIN, 'a pod name (a lowercase DNS subdomain)') ?? env.POD_NAME;
  if (!podName) {
    throw new MissingEnvError(`${WHERE}: POD_NAME is not set: the backend reads the parent pod to build runner pods from it; ${DOWNWARD_API_SNIPPET}`, {
      details: { variable: 'POD_NAME' },
    });
  }
  const namespace = r.optionalString('namespace', DNS_LABEL, 'a namespace name (a lowercase DNS label)') ?? env.POD_NAMESPACE ?? serviceAccountNamespace(tokenPath, kubeconfig);
  if (!namespace) {
    throw new MissingEnvError(`${WHERE}: POD_NAMESPACE is not set (and no service-account namespace file in ${tokenPath}); ${DOWNWARD_API_SNIPPET}`, {
      details: { variable: 'POD_NAMESPACE' },
    });
  }

  const extraEnv = r.raw('env');
  if (extraEnv !== undefined && !isStringRecord(extraEnv)) r.fail('env', 'an object of environment variable names to string values, e.g. { LOG_LEVEL: "debug" }');
  for (const name of Object.keys((extraEnv as Record<string, string> | undefined) ?? {})) {
    if (!ENV_NAME.test(name)) r.fail('env', `an object whose keys are valid environment variable names ("${name}" is not)`);
  }

  const secretEnv = r.raw('secretEnv');
  if (secretEnv !== undefined && !isStringRecord(secretEnv)) r.fail('secretEnv', 'an object of environment variable names to secret string values, e.g. { API_KEY: "..." }');
  for (const name of Object.keys((secretEnv as Record<string, string> | undefined) ?? {})) {
    if (!ENV_NAME.test(name) || name.startsWith('FLAME_') || name.startsWith('POD_')) {
      r.fail('secretEnv', `an object whose keys are environment variable names not starting with FLAME_ or POD_ ("${name}" is not)`);
    }
  }
  const cookie = r.oneOf('cookie', KUBERNETES_DEFAULTS.cookie, ['secret', 'env'] as const);
  if (cookie === 'env' && secretEnv !== undefined && Object.keys(secretEnv as Record<string, string>).length > 0) {
    r.fail('secretEnv', 'used with cookie: "secret" (the default): its values go into the pool\'s Secret');
  }
  const inherit = r.raw('inherit');
  if (inherit !== undefined && !(Array.isArray(inherit) && inherit.every((s) => (INHERITED_SETTINGS as readonly unknown[]).includes(s)))) {
    r.fail('inherit', `an array of ${INHERITED_SETTINGS.map((s) => JSON.stringify(s)).join(', ')}`);
  }

  const resources = r.raw('resources');
  if (resources !== undefined && !isResources(resources)) {
    r.fail('resources', 'a ResourceRequirements object, e.g. { requests: { cpu: "500m", memory: "256Mi" }, limits: { memory: "512Mi" } }');
  }
  const podTemplate = r.raw('podTemplate');
  if (podTemplate !== undefined && typeof podTemplate !== 'function' && !isPlainObject(podTemplate)) {
    r.fail('podTemplate', 'a (partial) pod object or a function (parentPod, appContainer) => pod');
  }
  const grace = r.has('deleteGracePeriodSeconds') ? r.int('deleteGracePeriodSeconds', 0, 0) : undefined;

  return {
    containerName: r.optionalString('containerName', DNS_LABEL, 'a container name (a lowercase DNS label)'),
    log: log as LogLevel | false | undefined,
    tokenPath,
    kubeconfig,
    podName,
    namespace,
    image: r.optionalString('image'),
    env: { ...((extraEnv as Record<string, string> | undefined) ?? {}) },
    resources: resources as V1ResourceRequirements | undefined,
    podTemplate: podTemplate as PodTemplate | undefined,
    omitOwnerReference: r.bool('omitOwnerReference', KUBERNETES_DEFAULTS.omitOwnerReference),
    deleteGracePeriodSeconds: grace,
    cookie,
    waitWhenUnschedulable: r.bool('waitWhenUnschedulable', KUBERNETES_DEFAULTS.waitWhenUnschedulable),
    inherit: new Set((inherit as InheritedSetting[] | undefined) ?? INHERITED_SETTINGS),
    automountServiceAccountToken: r.bool('automountServiceAccountToken', KUBERNETES_DEFAULTS.automountServiceAccountToken),
    secretEnv: { ...((secretEnv as Record<string, string> | undefined) ?? {}) },
    imagePullTimeout: r.ms('imagePullTimeout', KUBERNETES_DEFAULTS.imagePullTimeout, { min: 1 }),
    encryptLinks: r.bool('encryptLinks', KUBERNETES_DEFAULTS.encryptLinks),
  };
}

/** In a pod, the namespace file next to the token says where we run. */
function serviceAccountNamespace(tokenPath: string, kubeconfig: string | undefined): string | undefined {
  if (kubeconfig !== undefined) return undefined;
  try {
    const value = readFileSync(join(tokenPath, 'namespace'), 'utf8').trim();
    return value || undefined;
  } catch {
    return undefined;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return isPlainObject(value) && Object.values(value).every((v) => typeof v === 'string');
}

function isResources(value: unknown): boolean {
  if (!isPlainObject(value)) return false;
  for (const [key, quantities] of Object.entries(value)) {
    if (key === 'claims') continue;
    if (key !== 'requests' && key !== 'limits') return false;
    if (!isPlainObject(quantities) || !Object.values(quantities).every((q) => typeof q === 'string' || typeof q === 'number')) return false;
  }
  return true;
}
