/**
 * The Kubernetes backend without a cluster: flame-actors/testing's emulated cluster runs pods as
 * local processes, and this process stands in for the app's pod (the parent). It shows the runner
 * pod the backend creates from the parent pod, a call running in it, and no pod left after stop.
 *
 *   npm run build && node dist/examples/kubernetes-on-a-laptop.js
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { KubernetesBackend, Pool, startNode, type ClusterNode } from 'flame-actors';
import { EXTERNAL_POD_ANNOTATION, POD_IP_ANNOTATION, startEmulatedCluster } from 'flame-actors/testing';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NAMESPACE = 'shop';
const dir = mkdtempSync(join(tmpdir(), 'flame-k8s-example-'));
// The app image: in a real cluster, your image; here, a command the emulated kubelet runs.
const cluster = await startEmulatedCluster({
  images: { 'shop:1': { command: [process.execPath, 'dist/src/runner/main.js'], workingDir: ROOT } },
});
let node: ClusterNode | undefined;
try {
  // The Role of the README: what the app's service account may do.
  const token = cluster.createServiceAccount(NAMESPACE, 'shop-app', [
    { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
    { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'delete'] },
  ]);
  const kubeconfig = join(dir, 'kubeconfig');
  cluster.writeKubeconfig(kubeconfig, token, NAMESPACE);
  const admin = new KubeConfig();
  admin.loadFromFile(cluster.kubeconfigPath);
  const api = admin.makeApiClient(CoreV1Api);

  // The app's pod, as its Deployment would create it; this process plays its part.
  await api.createNamespacedPod({
    namespace: NAMESPACE,
    body: {
      metadata: { name: 'shop-7d9f', labels: { app: 'shop' }, annotations: { [EXTERNAL_POD_ANNOTATION]: 'true', [POD_IP_ANNOTATION]: '127.0.0.1' } },
      spec: {
        serviceAccountName: 'shop-app',
        containers: [{ name: 'app', image: 'shop:1', env: [{ name: 'SHOP_CURRENCY', value: 'EUR' }] }],
      },
    },
  });
  node = await startNode({ name: 'shop@127.0.0.1', port: 0, cookie: randomBytes(16).toString('hex'), log: false });
  const backend = new KubernetesBackend({ kubeconfig, podName: 'shop-7d9f', namespace: NAMESPACE });
  const pool = await Pool.start({ name: 'thumbs', node, backend, max: 2 });
  try {
    const started = performance.now();
    const where = await pool.call(() => ({ pod: process.env.POD_NAME, ip: process.env.POD_IP, currency: process.env.SHOP_CURRENCY }));
    console.log(`call ran in pod ${where.pod} (${where.ip}), inheriting SHOP_CURRENCY=${where.currency}, ${Math.round(performance.now() - started)} ms on a cold pool`);
    const pods = await api.listNamespacedPod({ namespace: NAMESPACE, labelSelector: 'flame-actors/pool=thumbs' });
    for (const pod of pods.items) {
      const owner = pod.metadata?.ownerReferences?.[0];
      console.log(`runner pod ${pod.metadata?.name}: ${pod.status?.phase}, restartPolicy ${pod.spec?.restartPolicy}, owned by ${owner?.kind} ${owner?.name}`);
    }
  } finally {
    await pool.stop();
  }
  const left = await api.listNamespacedPod({ namespace: NAMESPACE, labelSelector: 'flame-actors/pool=thumbs' });
  console.log(`after pool.stop(): ${left.items.length} runner pods`);
} finally {
  await node?.stop();
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
}
console.log('cluster stopped');
