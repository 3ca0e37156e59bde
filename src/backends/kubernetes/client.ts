/**
 * The few Kubernetes API calls the backend makes, on @kubernetes/client-node 1.4.0 (2.x pulls
 * undici 8, which needs Node >= 22.19). Every failure becomes a {@link KubernetesError} carrying the
 * status and reason of the server's `Status`, with a message that says what to do (a 403 names
 * the RBAC verb to grant, or the admission, quota or LimitRange that refused). Throttling (429) is retried after `Retry-After`; server errors and
 * network failures are retried for idempotent verbs only, so a create is never sent twice.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { join } from 'node:path';
import {
  AuthorizationV1Api,
  CoreV1Api,
  KubeConfig,
  Watch,
  type V1Pod,
  type V1Secret,
} from '@kubernetes/client-node';
import { backoffDelay, type BackoffPolicy } from '../../backoff.js';
import { InvalidOptionError, KubernetesError, MissingEnvError, type KubernetesErrorFields } from '../../errors.js';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'delete';
export type Resource = 'pods' | 'secrets';

/** What a request was about, for error messages. */
export interface RequestTarget {
  verb: Verb;
  resource: Resource;
  namespace: string;
  name?: string;
}

export interface PodList {
  items: V1Pod[];
  resourceVersion: string;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

const IDEMPOTENT: ReadonlySet<Verb> = new Set(['get', 'list', 'watch', 'delete']);
const MAX_ATTEMPTS = 4;
/** Backoff between retried requests. */
const RETRY_BACKOFF: BackoffPolicy = { baseMs: 200, maxMs: 5000 };
const RETRY_AFTER_CAP_MS = 10_000;

export interface ClientSource {
  tokenPath: string;
  kubeconfig: string | undefined;
}

export class KubernetesClient {
  /** The API server URL. */
  readonly server: string;
  /** Where the credentials come from, for messages (`the service account token in /var/run/...`). */
  readonly credentials: string;
  readonly #config: KubeConfig;
  readonly #core: CoreV1Api;
  readonly #authorization: AuthorizationV1Api;

  constructor(config: KubeConfig, credentials: string) {
    this.#config = config;
    this.credentials = credentials;
    this.server = config.getCurrentCluster()?.server ?? '(no server)';
    this.#core = config.makeApiClient(CoreV1Api);
    this.#authorization = config.makeApiClient(AuthorizationV1Api);
  }

  /**
   * A kubeconfig file when given, else the in-cluster service account: the API server from
   * KUBERNETES_SERVICE_HOST/PORT, and the token and CA from `tokenPath` (any folder, not only the
   * standard one, hence `loadFromClusterAndUser` with a `tokenFile` provider, which re-reads the
   * token as the kubelet rotates it).
   */
  static create(source: ClientSource, env: NodeJS.ProcessEnv = process.env): KubernetesClient {
    const config = new KubeConfig();
    if (source.kubeconfig !== undefined) {
      config.loadFromFile(source.kubeconfig);
      return new KubernetesClient(config, `the kubeconfig ${source.kubeconfig}`);
    }
    const host = env.KUBERNETES_SERVICE_HOST;
    const port = env.KUBERNETES_SERVICE_PORT_HTTPS || env.KUBERNETES_SERVICE_PORT;
    if (!host || !port) {
      throw new MissingEnvError(
        'KubernetesBackend: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set, so this is not a pod; outside a cluster pass { kubeconfig: "path/to/kubeconfig" }',
        { details: { variable: host ? 'KUBERNETES_SERVICE_PORT' : 'KUBERNETES_SERVICE_HOST' } },
      );
    }
    const tokenFile = join(source.tokenPath, 'token');
    const caFile = join(source.tokenPath, 'ca.crt');
    for (const file of [tokenFile, caFile]) {
      if (!existsSync(file)) {
        throw new InvalidOptionError(
          `new KubernetesBackend: option "tokenPath" must be a service-account folder with token and ca.crt (${file} does not exist; is automountServiceAccountToken off?)`,
          { details: { option: 'tokenPath', expected: 'a folder with token, ca.crt and namespace' } },
        );
      }
    }
    // client-node sends the token file as it is; a trailing newline would break the header.
    if (/\s$/.test(readFileSync(tokenFile, 'utf8'))) {
      throw new InvalidOptionError(`new KubernetesBackend: the token in ${tokenFile} ends with whitespace, which client-node would send in the Authorization header; write it without a trailing newline`, {
        details: { option: 'tokenPath', expected: 'a token file without trailing whitespace' },
      });
    }
    const server = `https://${isIPv6(host) ? `[${host}]` : host}:${port}`;
    config.loadFromClusterAndUser(
      { name: 'in-cluster', server, caFile, skipTLSVerify: false },
      { name: 'service-account', authProvider: { name: 'tokenFile', config: { tokenFile } } },
    );
    return new KubernetesClient(config, `the service account token in ${source.tokenPath}`);
  }

  readPod(namespace: string, name: string): Promise<V1Pod> {
    return this.#call({ verb: 'get', resource: 'pods', namespace, name }, () => this.#core.readNamespacedPod({ namespace, name }));
  }

  async listPods(namespace: string, labelSelector: string): Promise<PodList> {
    const list = await this.#call({ verb: 'list', resource: 'pods', namespace }, () => this.#core.listNamespacedPod({ namespace, labelSelector }));
    return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '' };
  }

  createPod(namespace: string, body: V1Pod, signal?: AbortSignal): Promise<V1Pod> {
    return this.#call({ verb: 'create', resource: 'pods', namespace }, () => this.#core.createNamespacedPod({ namespace, body }), signal);
  }

  /** Deletes a pod; false when it was already gone. */
  deletePod(namespace: string, name: string, gracePeriodSeconds?: number): Promise<boolean> {
    return this.#deleted(
      { verb: 'delete', resource: 'pods', namespace, name },
      () => this.#core.deleteNamespacedPod({ namespace, name, ...(gracePeriodSeconds !== undefined ? { gracePeriodSeconds } : {}) }),
    );
  }

  createSecret(namespace: string, body: V1Secret): Promise<V1Secret> {
    return this.#call({ verb: 'create', resource: 'secrets', namespace }, () => this.#core.createNamespacedSecret({ namespace, body }));
  }

  /** Deletes a secret; false when it was already gone. */
  deleteSecret(namespace: string, name: string): Promise<boolean> {
    return this.#deleted({ verb: 'delete', resource: 'secrets', namespace, name }, () => this.#core.deleteNamespacedSecret({ namespace, name }));
  }

  /**
   * Whether we may do `verb` on `resource` (a SelfSubjectAccessReview, which every authenticated
   * identity may create). Undefined when the review itself is not available.
   */
  async allowed(namespace: string, verb: Verb, resource: Resource): Promise<boolean | undefined> {
    try {
      const review = await this.#authorization.createSelfSubjectAccessReview({
        body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { namespace, verb, resource } } },
      });
      return review.status?.allowed;
    } catch {
      return undefined;
    }
  }

  /**
   * Opens a watch (client-node's `Watch`: resolves to its AbortController; `done` is called once
   * when the stream ends or fails, with an error carrying `statusCode` when the server refused).
   */
  async watchPods(
    namespace: string,
    query: Record<string, string | number | boolean>,
    onEvent: (type: WatchEventType, object: unknown) => void,
    done: (error: unknown) => void,
  ): Promise<AbortController> {
    return new Watch(this.#config).watch(`/api/v1/namespaces/${namespace}/pods`, query, (type: string, object: unknown) => onEvent(type as WatchEventType, object), done);
  }

  /** A watch failure as a KubernetesError (the same wording as for any other call). */
  watchError(namespace: string, error: unknown): KubernetesError {
    return toKubernetesError(error, { verb: 'watch', resource: 'pods', namespace }, this);
  }

  async #deleted(target: RequestTarget, run: () => Promise<unknown>): Promise<boolean> {
    try {
      await this.#call(target, run);
      return true;
    } catch (error) {
      if (error instanceof KubernetesError && error.statusCode === 404) return false;
      throw error;
    }
  }

  async #call<T>(target: RequestTarget, run: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run();
      } catch (raw) {
        const error = toKubernetesError(raw, target, this);
        const delay = retryDelay(error, target.verb, attempt, raw);
        if (delay === undefined || signal?.aborted) throw error;
        await new Promise((resolve) => setTimeout(resolve, delay));
        if (signal?.aborted) throw error;
      }
    }
  }
}

/** Milliseconds to wait before trying again, or undefined to give up. */
function retryDelay(error: KubernetesError, verb: Verb, attempt: number, raw: unknown): number | undefined {
  if (attempt >= MAX_ATTEMPTS) return undefined;
  const status = error.statusCode;
  const backoff = backoffDelay(RETRY_BACKOFF, attempt);
  // A 429 was refused before any processing: safe to resend whatever the verb.
  if (status === 429) {
    const after = Number(headerOf(raw, 'retry-after'));
    return Number.isFinite(after) && after > 0 ? Math.min(after * 1000, RETRY_AFTER_CAP_MS) : backoff;
  }
  if (IDEMPOTENT.has(verb) && (status === 0 || status >= 500)) return backoff;
  return undefined;
}

function headerOf(error: unknown, name: string): string | undefined {
  const headers = (error as { headers?: Record<string, string> } | undefined)?.headers;
  if (!headers || typeof headers !== 'object') return undefined;
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return String(value);
  return undefined;
}

interface StatusBody {
  reason?: string;
  message?: string;
  code?: number;
}

/** The `Status` a client-node ApiException carries as raw text (or already parsed). */
function statusBody(error: unknown): StatusBody {
  const body = (error as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as StatusBody;
    } catch {
      return { message: body.slice(0, 500) };
    }
  }
  return typeof body === 'object' && body !== null ? (body as StatusBody) : {};
}

/** Who the server says we are, from a Forbidden message (`User "system:serviceaccount:ns:name" cannot ...`). */
function identityOf(message: string | undefined): string | undefined {
  const user = /User "([^"]+)"/.exec(message ?? '')?.[1];
  if (!user) return undefined;
  const sa = /^system:serviceaccount:([^:]+):(.+)$/.exec(user);
  return sa ? `service account "${sa[1]}/${sa[2]}"` : `user "${user}"`;
}

/** Why a 403 was refused, from the server's message: RBAC, admission (Pod Security, webhooks), ResourceQuota or LimitRange. */
export function refusalOf(message: string | undefined): NonNullable<KubernetesErrorFields['refusal']> {
  const text = message ?? '';
  if (/cannot [a-z]+ resource "/.test(text)) return 'rbac';
  if (/exceeded quota|failed quota|forbidden: quota/i.test(text)) return 'quota';
  if (/(maximum|minimum) \S+ usage per (Container|Pod)|max limit to request ratio|LimitRange/i.test(text)) return 'limits';
  if (/no RBAC policy matched|is not allowed to|cannot (get|list|watch|create|delete|update|patch)/i.test(text)) return 'rbac';
  return 'admission';
}

/** Maps whatever a client-node call threw to a KubernetesError with a message a person can act on. */
export function toKubernetesError(error: unknown, target: RequestTarget, client: { server: string; credentials: string }): KubernetesError {
  if (error instanceof KubernetesError) return error;
  const { verb, resource, namespace, name } = target;
  const what = `${verb} ${resource}${name ? ` "${name}"` : ''} in namespace "${namespace}"`;
  const code = (error as { code?: unknown }).code;
  const statusCode = (error as { statusCode?: unknown }).statusCode;
  const status = typeof code === 'number' ? code : typeof statusCode === 'number' ? statusCode : 0;
  const fields = (reason: string, refusal?: KubernetesErrorFields['refusal']): KubernetesErrorFields => ({
    statusCode: status, reason, verb, resource, namespace, ...(name ? { name } : {}), ...(refusal ? { refusal } : {}),
  });
  if (status === 0) {
    const cause = (error as { code?: unknown; message?: unknown });
    const why = typeof cause.code === 'string' ? `${cause.code}: ${String(cause.message)}` : String(cause.message ?? error);
    return new KubernetesError(`cannot ${what}: the API server at ${client.server} is unreachable (${why})`, { cause: error, ...fields('Unreachable') });
  }
  const body = statusBody(error);
  const reason = body.reason ?? (status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : `HTTP${status}`);
  const serverSays = body.message ? ` (API server: ${body.message})` : '';
  if (status === 403) {
    const refusal = refusalOf(body.message);
    return new KubernetesError(forbiddenMessage(refusal, target, body.message), { cause: error, ...fields(reason, refusal) });
  }
  if (status === 401) {
    return new KubernetesError(`the API server rejected the credentials (401 Unauthorized) to ${what}: check ${client.credentials}`, { cause: error, ...fields(reason) });
  }
  if (status === 404 && reason === 'NotFound') {
    return new KubernetesError(`cannot ${what}: not found${serverSays}`, { cause: error, ...fields(reason) });
  }
  return new KubernetesError(`cannot ${what}: ${status} ${reason}${body.message ? `: ${body.message}` : ''}`, { cause: error, ...fields(reason) });
}

/** What to change for each kind of 403: a grant, the pod, the quota or the limits. */
function forbiddenMessage(refusal: NonNullable<KubernetesErrorFields['refusal']>, target: RequestTarget, message: string | undefined): string {
  const { verb, resource, namespace } = target;
  const serverSays = message ? `: ${message}` : '';
  switch (refusal) {
    case 'rbac': {
      const who = identityOf(message) ?? 'the service account';
      return `${who} cannot ${verb} ${resource} in namespace "${namespace}": grant "${verb}" on "${resource}" in its Role (see README, Kubernetes backend, RBAC)${message ? ` (API server: ${message})` : ''}`;
    }
    case 'quota': {
      const quota = /(?:exceeded|failed) quota: ([^,:\s]+)/.exec(message ?? '')?.[1];
      return `ResourceQuota ${quota ? `"${quota}" ` : ''}in namespace "${namespace}" refuses to ${verb} ${resource}${serverSays}; raise the quota, or lower the runner's requests and limits (option "resources", or the app container's), or the pool's max`;
    }
    case 'limits':
      return `a LimitRange in namespace "${namespace}" refuses to ${verb} ${resource}${serverSays}; set the runner's requests and limits within it (option "resources", or the app container's)`;
    case 'admission': {
      const podSecurity = /violates PodSecurity "([^"]+)"/.exec(message ?? '')?.[1];
      if (podSecurity) {
        return `Pod Security "${podSecurity}" in namespace "${namespace}" refuses the runner pod${serverSays}; set these fields in the app container's and the parent pod's securityContext (runner pods inherit them) or in the option "podTemplate", or relax the namespace's pod-security.kubernetes.io/enforce label. This is not a missing RBAC grant`;
      }
      return `admission refused to ${verb} ${resource} in namespace "${namespace}"${serverSays}; change the runner pod (the app container, the option "podTemplate") or the namespace's policy. This is not a missing RBAC grant`;
    }
  }
}
