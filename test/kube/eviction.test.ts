import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CoreV1Api } from '@kubernetes/client-node';
import { startEmulatedCluster, type EmulatedCluster } from '../../src/testing/index.js';
import { coreApi, eventually, kubectl, kubectlUntil, nodePod, rawRequest, sleeperPod, waitForPod, waitForPodGone, webDeploymentYaml } from './helpers.js';

const WORKLOAD_YAML = `${webDeploymentYaml(2)}---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: { name: web, namespace: default }
spec:
  minAvailable: 2
  selector: { matchLabels: { app: web } }
`;

describe('Emulated cluster evictions, cordon and drain', function () {
  this.timeout(60_000);
  let cluster: EmulatedCluster;
  let api: CoreV1Api;
  let dir: string;
  let kc: string;

  const evict = (name: string) =>
    rawRequest(cluster, 'POST', `/api/v1/namespaces/default/pods/${name}/eviction`, { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace: 'default' } });
  const webPods = async () => (await api.listNamespacedPod({ namespace: 'default', labelSelector: 'app=web' })).items.filter((p) => !p.metadata!.deletionTimestamp);

  before(async function () {
    cluster = await startEmulatedCluster();
    api = coreApi(cluster);
    kc = cluster.kubeconfigPath;
    dir = mkdtempSync(join(tmpdir(), 'eviction-spec-'));
    writeFileSync(join(dir, 'workload.yaml'), WORKLOAD_YAML);
  });

  after(async function () {
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('refuses an eviction that would break a PodDisruptionBudget with the real 429, and evicts once it allows', async function () {
    expect((await kubectl(kc, ['apply', '-f', join(dir, 'workload.yaml')])).code).to.equal(0);
    await kubectl(kc, ['rollout', 'status', 'deployment/web', '--timeout=30s'], 40_000);
    await kubectlUntil(kc, ['get', 'pdb', 'web', '-o', 'jsonpath={.status.currentHealthy}/{.status.desiredHealthy}/{.status.disruptionsAllowed}'], (out) => out === '2/2/0', 'the budget status');
    const [victim] = await webPods();
    const refused = await evict(victim!.metadata!.name!);
    expect(refused.status).to.equal(429);
    expect(JSON.parse(refused.text)).to.deep.include({
      kind: 'Status',
      status: 'Failure',
      reason: 'TooManyRequests',
      message: "Cannot evict pod as it would violate the pod's disruption budget.",
      details: { causes: [{ reason: 'DisruptionBudget', message: 'The disruption budget web needs 2 healthy pods and has 2 currently' }] },
      code: 429,
    });
    expect((await kubectl(kc, ['patch', 'pdb', 'web', '--type=merge', '-p', '{"spec":{"minAvailable":1}}'])).code).to.equal(0);
    const evicted = await evict(victim!.metadata!.name!);
    expect(evicted.status).to.equal(201);
    expect(JSON.parse(evicted.text)).to.deep.include({ kind: 'Status', status: 'Success', code: 201 });
    await eventually(async () => (await webPods()).length === 2 && (await webPods()).every((p) => p.status?.phase === 'Running'), 'the replacement pod to run', 20_000);
    expect((await kubectl(kc, ['delete', 'pdb', 'web'])).code).to.equal(0);
  });

  it('marks an evicted pod with the DisruptionTarget condition before deleting it, as kube-apiserver does', async function () {
    await api.createNamespacedPod({
      namespace: 'default',
      body: nodePod('evictee', `process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1000)`, { spec: { terminationGracePeriodSeconds: 30 } }),
    });
    await waitForPod(cluster, 'default', 'evictee', (p) => p.status?.phase === 'Running');
    await eventually(async () => (await api.readNamespacedPodLog({ namespace: 'default', name: 'evictee' })).includes('up'), 'the pod to ignore SIGTERM');
    expect((await evict('evictee')).status).to.equal(201);
    const terminating = await api.readNamespacedPod({ namespace: 'default', name: 'evictee' });
    expect(terminating.metadata?.deletionTimestamp).to.not.equal(undefined);
    expect(terminating.status?.conditions?.find((c) => c.type === 'DisruptionTarget')).to.deep.include({
      status: 'True',
      reason: 'EvictionByEvictionAPI',
      message: 'Eviction API: evicting',
    });
    await api.deleteNamespacedPod({ namespace: 'default', name: 'evictee', gracePeriodSeconds: 0 });
    await waitForPodGone(cluster, 'default', 'evictee');
  });

  it('keeps new pods Pending (Unschedulable) on a cordoned node until it is uncordoned', async function () {
    expect((await kubectl(kc, ['cordon', 'emulated-node'])).stdout.trim()).to.equal('node/emulated-node cordoned');
    expect((await kubectl(kc, ['get', 'node', 'emulated-node', '-o', 'jsonpath={.spec.unschedulable}'])).stdout).to.equal('true');
    await api.createNamespacedPod({ namespace: 'default', body: sleeperPod('waiting') });
    const pending = await waitForPod(cluster, 'default', 'waiting', (p) => p.status?.conditions?.some((c) => c.type === 'PodScheduled') ?? false);
    expect(pending.status!.conditions!.find((c) => c.type === 'PodScheduled')).to.include({ status: 'False', reason: 'Unschedulable' });
    expect((await kubectl(kc, ['uncordon', 'emulated-node'])).stdout.trim()).to.equal('node/emulated-node uncordoned');
    await waitForPod(cluster, 'default', 'waiting', (p) => p.status?.phase === 'Running');
  });

  it('drains the node with kubectl drain: bare pods need --force, every pod is evicted, replacements wait for uncordon', async function () {
    const refused = await kubectl(kc, ['drain', 'emulated-node', '--timeout=20s'], 30_000);
    expect(refused.code).to.not.equal(0);
    expect(refused.stderr).to.include('cannot delete Pods that declare no controller (use --force to override): default/waiting');
    const drained = await kubectl(kc, ['drain', 'emulated-node', '--force', '--grace-period=1', '--timeout=30s'], 40_000);
    expect(drained.stderr + drained.stdout, drained.stderr + drained.stdout).to.include('node/emulated-node drained');
    expect(drained.stdout).to.include('pod/waiting evicted');
    const pods = await api.listNamespacedPod({ namespace: 'default' });
    expect(pods.items.map((p) => p.metadata!.name)).to.not.include('waiting');
    expect(pods.items.every((p) => !p.spec!.nodeName && p.status!.phase === 'Pending')).to.equal(true);
    expect(pods.items).to.have.length(2);
    expect((await kubectl(kc, ['uncordon', 'emulated-node'])).code).to.equal(0);
    await eventually(async () => (await webPods()).filter((p) => p.status?.phase === 'Running').length === 2, 'the web pods to run again', 20_000);
    expect((await kubectl(kc, ['delete', 'deployment', 'web'])).code).to.equal(0);
    await eventually(() => cluster.podProcesses().length === 0, 'no pod process left', 20_000);
  });
});
