/**
 * The Kubernetes backend on the emulated cluster (pods are local processes, the API server is a
 * real HTTPS server), each row beside the same measurement on the process backend in the same
 * run, interleaved: a cold call (an empty pool's first call, to its result), and a burst (a pool
 * started with 100 runners, until all are ready). The difference is the backend's own cost: API
 * calls, the watch, the kubelet's pod start, the runner's environment from the pod spec.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { KubernetesBackend } from '../src/backends/kubernetes/backend.js';
import { requiredPermissions } from '../src/backends/kubernetes/runner-pods.js';
import { ProcessBackend, runnerEntry } from '../src/backends/process/backend.js';
import { startNode, type ClusterNode } from '../src/cluster/node.js';
import type { Backend } from '../src/flame/backend.js';
import { Pool } from '../src/flame/pool.js';
import { EXTERNAL_POD_ANNOTATION, POD_IP_ANNOTATION, startEmulatedCluster } from '../src/testing/index.js';
import { median, round, type Comparison, type Row } from './report.js';
import type { BenchContext } from './suite.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const IMAGE = 'bench-runner:1';
const NAMESPACE = 'bench';
const BURST = 100;

const add = (a: number, b: number) => a + b;

export async function k8sBenchmarks(ctx: BenchContext): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'flame-k8s-bench-'));
  // The same command as the process backend's runners, as the image's entry point.
  const cluster = await startEmulatedCluster({
    images: { [IMAGE]: { command: [process.execPath, '--v8-pool-size=1', '--no-experimental-detect-module', runnerEntry()], workingDir: ROOT } },
  });
  let node: ClusterNode | undefined;
  try {
    // Exactly what the backend needs, as the kit's Role grants it.
    const needed = requiredPermissions();
    const rules = [...new Set(needed.map(([, resource]) => resource))].map((resource) => ({
      apiGroups: [''], resources: [resource], verbs: needed.filter(([, r]) => r === resource).map(([verb]) => verb),
    }));
    const token = cluster.createServiceAccount(NAMESPACE, 'bench', rules);
    const kubeconfig = join(dir, 'kubeconfig');
    cluster.writeKubeconfig(kubeconfig, token, NAMESPACE);
    const admin = new KubeConfig();
    admin.loadFromFile(cluster.kubeconfigPath);
    // This process plays the app's pod (an external pod on 127.0.0.1).
    await admin.makeApiClient(CoreV1Api).createNamespacedPod({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'bench-app', annotations: { [EXTERNAL_POD_ANNOTATION]: 'true', [POD_IP_ANNOTATION]: '127.0.0.1' } },
        spec: { serviceAccountName: 'bench', containers: [{ name: 'app', image: IMAGE }] },
      },
    });
    node = await startNode({ name: 'bench@127.0.0.1', port: 0, cookie: randomBytes(16).toString('hex'), log: false });
    const parent = node;
    const backends: Record<'k8s' | 'process', () => Backend> = {
      k8s: () => new KubernetesBackend({ kubeconfig, podName: 'bench-app', namespace: NAMESPACE, log: false }),
      process: () => new ProcessBackend(),
    };
    let seq = 0;
    const coldCall = async (kind: 'k8s' | 'process'): Promise<number> => {
      const pool = await Pool.start({ name: `cold-${kind}-${++seq}`, backend: backends[kind](), node: parent, max: 1, shutdownTimeout: 1000, log: 'warn' });
      try {
        const start = performance.now();
        await pool.call(add, [1, 2]);
        return performance.now() - start;
      } finally {
        await pool.stop();
      }
    };
    const burst = async (kind: 'k8s' | 'process'): Promise<number> => {
      const start = performance.now();
      const pool = await Pool.start({
        name: `burst-${kind}-${++seq}`, backend: backends[kind](), node: parent, min: BURST, max: BURST, bootTimeout: 180_000, failsafeTimeout: 180_000, shutdownTimeout: 1000, log: 'warn',
      });
      const ms = performance.now() - start;
      await pool.stop();
      return ms;
    };

    const coldRounds = ctx.quick ? 2 : 5;
    const cold = { k8s: [] as number[], process: [] as number[] };
    for (let i = 0; i < coldRounds; i++) {
      ctx.progress(`cold calls ${i + 1}/${coldRounds}`, (i / coldRounds) * 0.3);
      // Alternate which goes first, so neither always runs on a machine warmed by the other.
      for (const kind of i % 2 === 0 ? (['process', 'k8s'] as const) : (['k8s', 'process'] as const)) cold[kind].push(await coldCall(kind));
    }
    const burstRounds = ctx.quick ? 1 : 2;
    const bursts = { k8s: [] as number[], process: [] as number[] };
    for (let i = 0; i < burstRounds; i++) {
      ctx.progress(`${BURST}-runner bursts ${i + 1}/${burstRounds}`, 0.3 + (i / burstRounds) * 0.7);
      for (const kind of i % 2 === 0 ? (['process', 'k8s'] as const) : (['k8s', 'process'] as const)) bursts[kind].push(await burst(kind));
    }
    return [
      { name: 'cold-call-k8s', value: round(median(cold.k8s)), unit: 'ms', detail: `a call on an empty pool of emulated runner pods, median of ${coldRounds}` },
      { name: 'cold-call-process', value: round(median(cold.process)), unit: 'ms', detail: 'cold-call on the process backend, interleaved with the row above' },
      { name: 'k8s-burst-100', value: round(median(bursts.k8s)), unit: 'ms', detail: `Pool.start with min ${BURST} runner pods until all are ready, median of ${burstRounds}` },
      { name: 'process-burst-100', value: round(median(bursts.process)), unit: 'ms', detail: `the same with ${BURST} process runners, interleaved` },
    ];
  } finally {
    await node?.stop().catch(() => {});
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const k8sComparisons: Comparison[] = [
  { name: 'cold-call-k8s', baseline: 'cold-call-process', target: { op: '<=', limit: 1.5 } },
  { name: 'k8s-burst-100', baseline: 'process-burst-100', target: { op: '<=', limit: 1.5 } },
];
