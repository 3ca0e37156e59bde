/**
 * Shared means of the emulated-cluster specifications: clients on a running cluster, a kubectl
 * runner, and waiting on watch events with a deadline (never on sleeps).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request, type Agent } from 'node:https';
import { CoreV1Api, KubeConfig, Watch } from '@kubernetes/client-node';
import type { V1Pod } from '@kubernetes/client-node';
import type { EmulatedCluster } from '../../src/testing/index.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Every pod command in these tests carries this argument, so leftovers can be found in /proc. It
 * names this test run: the machine may run several at once (a shared CI host, a second checkout),
 * and the leftover check kills what it finds, which must never be another run's live pods.
 */
export const POD_MARKER = `flame-emulator-spec-pod-${process.pid}`;

export function kubeConfigFor(cluster: EmulatedCluster, token = cluster.adminToken, namespace?: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(cluster.kubeconfigFor(token, namespace));
  return kc;
}

export function coreApi(cluster: EmulatedCluster, token?: string): CoreV1Api {
  return kubeConfigFor(cluster, token).makeApiClient(CoreV1Api);
}

/** Creates namespaces (the API refuses objects in a namespace that does not exist). */
export async function createNamespaces(cluster: EmulatedCluster, names: string[]): Promise<void> {
  const api = coreApi(cluster);
  for (const name of names) await api.createNamespace({ body: { metadata: { name } } });
}

/** A pod running `node -e script` (the marker rides along as an ignored argument). */
export function nodePod(name: string, script: string, extra: { spec?: Partial<NonNullable<V1Pod['spec']>>; metadata?: V1Pod['metadata']; container?: object } = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, ...(extra.metadata ?? {}) },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 2,
      ...(extra.spec ?? {}),
      containers: [{ name: 'main', image: 'node:20', command: ['node', '-e', script, POD_MARKER], ...(extra.container ?? {}) }],
    },
  };
}

/** A Deployment manifest `web` (label `app: web`) whose pods log `message` and run until SIGTERM. */
export function webDeploymentYaml(replicas: number, message = 'up'): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: default }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: main
        image: node:20
        command: ["node", "-e", "process.on('SIGTERM', () => process.exit(0)); console.log('${message}'); setInterval(() => {}, 1000)", "${POD_MARKER}"]
`;
}

/** A pod that runs until stopped (and exits promptly on SIGTERM). */
export function sleeperPod(name: string, extra: Parameters<typeof nodePod>[2] = {}): V1Pod {
  return nodePod(name, "process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000);", extra);
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function kubectl(kubeconfigPath: string, args: string[], timeoutMs = 20_000): Promise<KubectlResult> {
  return new Promise((resolve) => {
    execFile('kubectl', ['--kubeconfig', kubeconfigPath, ...args], { timeout: timeoutMs, maxBuffer: 8 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export interface WatchEvent {
  type: string;
  object: V1Pod & { kind?: string; metadata?: V1Pod['metadata'] };
}

/**
 * Watches pods (optionally one by name) and resolves with all events seen until `done(events)`
 * says so; rejects at the deadline with what was seen.
 */
export async function watchPodsUntil(
  cluster: EmulatedCluster,
  namespace: string,
  done: (events: WatchEvent[]) => boolean,
  options: { name?: string; resourceVersion?: string; timeoutMs?: number; token?: string; query?: Record<string, string | boolean | number> } = {},
): Promise<WatchEvent[]> {
  const events: WatchEvent[] = [];
  const watch = new Watch(kubeConfigFor(cluster, options.token));
  const query: Record<string, string | boolean | number> = { ...(options.query ?? {}) };
  if (options.name) query.fieldSelector = `metadata.name=${options.name}`;
  if (options.resourceVersion) query.resourceVersion = options.resourceVersion;
  let controller: AbortController | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<WatchEvent[]>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`watch deadline: saw ${events.map((e) => `${e.type}:${e.object.metadata?.name}:${e.object.status?.phase}`).join(', ')}`)),
        options.timeoutMs ?? 15_000,
      );
      watch
        .watch(
          `/api/v1/namespaces/${namespace}/pods`,
          query,
          (type, object) => {
            events.push({ type, object: object as WatchEvent['object'] });
            if (done(events)) resolve(events);
          },
          (error) => {
            if (!done(events)) reject(new Error(`watch ended early (${String(error)}) after ${events.map((e) => e.type).join(',')}`));
          },
        )
        .then((c) => {
          controller = c;
        }, reject);
    });
  } finally {
    clearTimeout(timer);
    controller?.abort();
  }
}

/** Resolves with the pod once `predicate` holds for it (seen through a watch), or rejects at the deadline. */
export async function waitForPod(cluster: EmulatedCluster, namespace: string, name: string, predicate: (pod: V1Pod) => boolean, timeoutMs = 15_000): Promise<V1Pod> {
  const events = await watchPodsUntil(cluster, namespace, (seen) => seen.length > 0 && seen[seen.length - 1]!.type !== 'DELETED' && predicate(seen[seen.length - 1]!.object), {
    name,
    timeoutMs,
  });
  return events[events.length - 1]!.object;
}

/** Resolves once the pod object is gone (DELETED seen, or it no longer exists). */
export async function waitForPodGone(cluster: EmulatedCluster, namespace: string, name: string, timeoutMs = 15_000): Promise<void> {
  const api = coreApi(cluster);
  const list = await api.listNamespacedPod({ namespace, fieldSelector: `metadata.name=${name}` });
  if (list.items.length === 0) return;
  await watchPodsUntil(cluster, namespace, (seen) => seen.some((e) => e.type === 'DELETED'), {
    name,
    resourceVersion: list.metadata!.resourceVersion!,
    timeoutMs,
  });
}

/** Whether a process runs (a zombie, dead but not yet reaped by its new parent, does not count). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return process.platform !== 'linux';
  }
}

/** Polls (bounded in count and time) until `check` holds: the suite's own `waitFor`. */
export function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000, intervalMs = 50): Promise<void> {
  return waitFor(check, what, timeoutMs, intervalMs);
}

/**
 * Runs kubectl until it succeeds and its stdout satisfies `check` (bounded), and returns that
 * stdout; kubectl is a process per attempt, hence the longer interval.
 */
export async function kubectlUntil(kubeconfig: string, args: string[], check: (stdout: string) => boolean, what: string): Promise<string> {
  let last = '';
  let accepted = '';
  await waitFor(async () => {
    const result = await kubectl(kubeconfig, args);
    last = result.stdout + result.stderr;
    if (result.code !== 0 || !check(result.stdout)) return false;
    accepted = result.stdout;
    return true;
  }, `${what} (kubectl ${args.join(' ')})`, 15_000, 100).catch((error: Error) => {
    throw new Error(`${error.message}; last output: ${last}`);
  });
  return accepted;
}

/** The Status body of a client-node ApiException (its `body` is the raw response text). */
export function statusOf(error: unknown): { code?: number; reason?: string; message?: string; details?: { name?: string; kind?: string; causes?: { field?: string; reason?: string; message?: string }[]; retryAfterSeconds?: number } } {
  const body = (error as { body?: unknown }).body;
  if (typeof body !== 'string') throw new Error(`not an ApiException with a body: ${String(error)}`);
  return JSON.parse(body) as ReturnType<typeof statusOf>;
}

export async function expectApiError(promise: Promise<unknown>): Promise<ReturnType<typeof statusOf> & { httpCode: number; headers: Record<string, string> }> {
  try {
    await promise;
  } catch (error) {
    const httpCode = (error as { code?: number }).code ?? 0;
    return { ...statusOf(error), httpCode, headers: ((error as { headers?: Record<string, string> }).headers ?? {}) };
  }
  throw new Error('expected the request to fail');
}

/** A plain HTTPS request to the cluster (admin token unless given), for what typed clients cannot send. */
export function rawRequest(
  cluster: EmulatedCluster,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  agent?: Agent,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = request(
      `${cluster.url}${path}`,
      {
        method,
        ca: cluster.caPem,
        ...(agent ? { agent } : {}),
        headers: {
          Authorization: `Bearer ${cluster.adminToken}`,
          ...(payload !== undefined ? { 'Content-Type': 'application/json' } : {}),
          ...headers,
        },
        timeout: 15_000,
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`request ${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}
