/**
 * The Kubernetes backend's test bed: an emulated cluster whose runner image runs flame-actors'
 * runner entry point, a service account with the documented Role, and this test process as the
 * parent (an external pod on 127.0.0.1, with a parent node the runner pods dial back).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import type { CoreV1Api, V1Container, V1Pod } from '@kubernetes/client-node';
import { startNode, type ClusterNode } from '../../src/cluster/node.js';
import type { KubernetesBackendOptions } from '../../src/backends/kubernetes/options.js';
import { runnerEntry } from '../../src/backends/process/backend.js';
import { EXTERNAL_POD_ANNOTATION, POD_IP_ANNOTATION, startEmulatedCluster, type EmulatedCluster, type EmulatedClusterOptions, type PolicyRule } from '../../src/testing/index.js';
import { coreApi } from '../kube/helpers.js';

export const NAMESPACE = 'shop';
export const SERVICE_ACCOUNT = 'shop-parent';
export const RUNNER_IMAGE = 'flame-runner:1';
/** A container that only sleeps (exits on SIGTERM): pods that run without being runners. */
export const SLEEPER_IMAGE = 'sleeper:1';
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** The Role the README documents. */
export const RUNNER_RULES: PolicyRule[] = [
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'delete'] },
];

export interface TestBed {
  cluster: EmulatedCluster;
  /** Admin client, to look at what the backend did. */
  api: CoreV1Api;
  /** The parent node runner pods connect back to (127.0.0.1, any port). */
  node: ClusterNode;
  /** A kubeconfig file for the shop-parent service account. */
  kubeconfig: string;
  /** A kubeconfig file for the shop-parent service account that reaches the API server at `server` (a proxy). */
  kubeconfigVia(server: string): string;
  /** A kubeconfig file for another service account with other rules. */
  kubeconfigWith(account: string, rules: PolicyRule[]): string;
  /** Creates a parent pod (external: the test process stands in for it). */
  createParentPod(name: string, container?: Partial<V1Container>): Promise<V1Pod>;
  /** Backend options pointing at a parent pod. */
  options(podName: string, extra?: KubernetesBackendOptions): KubernetesBackendOptions;
  stop(): Promise<void>;
}

/** `clusterOptions` are passed to the emulated cluster (e.g. `bookmarkIntervalMs`). */
export async function startTestBed(clusterOptions: Partial<EmulatedClusterOptions> = {}): Promise<TestBed> {
  const dir = mkdtempSync(join(tmpdir(), 'flame-k8s-test-'));
  const cluster = await startEmulatedCluster({
    ...clusterOptions,
    images: {
      // The process backend's runner entry point (the bundle once built), as a runner image's command.
      [RUNNER_IMAGE]: { command: [process.execPath, '--v8-pool-size=1', runnerEntry()], workingDir: ROOT },
      [SLEEPER_IMAGE]: { command: [process.execPath, '-e', "process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000)"] },
    },
    imagePullBackoffMs: 200,
  });
  let node: ClusterNode | undefined;
  try {
    const token = cluster.createServiceAccount(NAMESPACE, SERVICE_ACCOUNT, RUNNER_RULES);
    const kubeconfig = join(dir, 'kubeconfig');
    cluster.writeKubeconfig(kubeconfig, token, NAMESPACE);
    node = await startNode({ name: 'shop@127.0.0.1', port: 0, cookie: randomBytes(16).toString('hex'), log: false });
    const api = coreApi(cluster);
    const parentNode = node;
    return {
      cluster,
      api,
      node: parentNode,
      kubeconfig,
      kubeconfigVia(server) {
        const path = join(dir, `kubeconfig-via-${server.replace(/\W+/g, '-')}`);
        writeFileSync(path, readFileSync(kubeconfig, 'utf8').split(cluster.url).join(server));
        return path;
      },
      kubeconfigWith(account, rules) {
        const path = join(dir, `kubeconfig-${account}`);
        cluster.writeKubeconfig(path, cluster.createServiceAccount(NAMESPACE, account, rules), NAMESPACE);
        return path;
      },
      async createParentPod(name, container = {}) {
        return api.createNamespacedPod({
          namespace: NAMESPACE,
          body: {
            metadata: {
              name,
              // A Deployment's selector labels: runner pods must not get them.
              labels: { app: 'shop', 'pod-template-hash': '5d8f7c' },
              annotations: { [EXTERNAL_POD_ANNOTATION]: 'true', [POD_IP_ANNOTATION]: '127.0.0.1' },
            },
            spec: {
              serviceAccountName: SERVICE_ACCOUNT,
              containers: [
                {
                  name: 'app',
                  image: RUNNER_IMAGE,
                  env: [
                    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                    { name: 'SHOP_MODE', value: 'checkout' },
                    { name: 'GREETING', value: 'hello from $(POD_NAME) on $(POD_IP)' },
                    { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                    { name: 'FLAME_PORT', value: '4999' },
                    { name: 'FLAME_NODE_NAME', value: 'shop@$(POD_IP)' },
                  ],
                  resources: { requests: { cpu: '100m', memory: '64Mi' } },
                  ...container,
                },
              ],
            },
          },
        });
      },
      options(podName, extra = {}) {
        return { kubeconfig, podName, namespace: NAMESPACE, log: false, ...extra };
      },
      async stop() {
        await parentNode.stop().catch(() => {});
        await cluster.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await node?.stop().catch(() => {});
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** The runner pods of a pool (admin view). */
export async function runnerPods(api: CoreV1Api, pool: string): Promise<V1Pod[]> {
  const list = await api.listNamespacedPod({ namespace: NAMESPACE, labelSelector: `flame-actors/pool=${pool}` });
  return list.items;
}

/** The pod name in a Kubernetes runner's description (`pod NAME (IP)`). */
export function podNameOf(description: string | undefined): string {
  const name = /^pod (\S+)/.exec(description ?? '')?.[1];
  if (!name) throw new Error(`not a runner pod description: ${description}`);
  return name;
}
