import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulatedCluster, type EmulatedCluster } from '../../src/testing/index.js';
import { coreApi, eventually, kubectl, kubectlUntil, watchPodsUntil, webDeploymentYaml, type WatchEvent } from './helpers.js';

const DEPLOYMENT_YAML = webDeploymentYaml;

interface Named {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: { apiVersion: string; kind: string; name: string; controller?: boolean; blockOwnerDeletion?: boolean }[] };
  spec?: { replicas?: number };
  status?: Record<string, unknown>;
}

describe('Emulated cluster apps/v1 Deployments and ReplicaSets', function () {
  this.timeout(60_000);
  let cluster: EmulatedCluster;
  let dir: string;
  let kc: string;

  const items = async (what: string): Promise<Named[]> => (JSON.parse((await kubectl(kc, ['get', what, '-o', 'json'])).stdout) as { items: Named[] }).items;

  before(async function () {
    cluster = await startEmulatedCluster();
    kc = cluster.kubeconfigPath;
    dir = mkdtempSync(join(tmpdir(), 'apps-spec-'));
  });

  after(async function () {
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('rolls out a Deployment: a ReplicaSet NAME-HASH owning pods labelled with pod-template-hash, status for rollout status', async function () {
    writeFileSync(join(dir, 'deploy.yaml'), DEPLOYMENT_YAML(2));
    expect((await kubectl(kc, ['apply', '-f', join(dir, 'deploy.yaml')])).stdout.trim()).to.equal('deployment.apps/web created');
    const rollout = await kubectl(kc, ['rollout', 'status', 'deployment/web', '--timeout=30s'], 40_000);
    expect(rollout.stdout.trim().split('\n').pop()).to.equal('deployment "web" successfully rolled out');
    const [rs] = await items('replicasets');
    const hash = rs!.metadata.labels!['pod-template-hash']!;
    expect(rs!.metadata.name).to.equal(`web-${hash}`);
    expect(rs!.metadata.ownerReferences?.[0]).to.include({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', controller: true, blockOwnerDeletion: true });
    const pods = await items('pods');
    expect(pods).to.have.length(2);
    for (const pod of pods) {
      expect(pod.metadata.name).to.match(new RegExp(`^web-${hash}-[bcdfghjklmnpqrstvwxz2456789]{5}$`));
      expect(pod.metadata.labels).to.deep.equal({ app: 'web', 'pod-template-hash': hash });
      expect(pod.metadata.ownerReferences?.[0]).to.include({ kind: 'ReplicaSet', name: rs!.metadata.name, controller: true });
    }
    const [deployment] = await items('deployments');
    expect(deployment!.status).to.include({ replicas: 2, readyReplicas: 2, availableReplicas: 2, updatedReplicas: 2, observedGeneration: 1 });
    const conditions = deployment!.status!.conditions as { type: string; status: string; reason: string }[];
    expect(conditions.map((c) => [c.type, c.status, c.reason])).to.deep.include.members([
      ['Available', 'True', 'MinimumReplicasAvailable'],
      ['Progressing', 'True', 'NewReplicaSetAvailable'],
    ]);
  });

  it('scales with kubectl scale, up and down', async function () {
    expect((await kubectl(kc, ['scale', 'deployment/web', '--replicas=3'])).stdout.trim()).to.equal('deployment.apps/web scaled');
    await kubectlUntil(kc, ['get', 'deployment', 'web', '-o', 'jsonpath={.status.readyReplicas}'], (out) => out === '3', 'three ready replicas');
    expect((await kubectl(kc, ['scale', 'replicaset', '--all', '--replicas=3'])).code).to.equal(0);
    expect((await kubectl(kc, ['scale', 'deployment/web', '--replicas=1'])).code).to.equal(0);
    await eventually(async () => (await items('pods')).filter((p) => !(p.metadata as { deletionTimestamp?: string }).deletionTimestamp).length === 1, 'one pod left');
    const scale = JSON.parse((await kubectl(kc, ['get', '--raw', '/apis/apps/v1/namespaces/default/deployments/web/scale'])).stdout) as { kind: string; spec: { replicas: number }; status: { selector: string } };
    expect(scale).to.deep.include({ kind: 'Scale', apiVersion: 'autoscaling/v1', spec: { replicas: 1 } });
    expect(scale.status.selector).to.equal('app=web');
  });

  it('replaces the ReplicaSet when the template changes (revision 2), scaling the old one to zero', async function () {
    writeFileSync(join(dir, 'deploy.yaml'), DEPLOYMENT_YAML(1, 'v2'));
    expect((await kubectl(kc, ['apply', '-f', join(dir, 'deploy.yaml')])).stdout.trim()).to.equal('deployment.apps/web configured');
    const rollout = await kubectl(kc, ['rollout', 'status', 'deployment/web', '--timeout=30s'], 40_000);
    expect(rollout.stdout.trim().split('\n').pop()).to.equal('deployment "web" successfully rolled out');
    const sets = await items('replicasets');
    expect(sets).to.have.length(2);
    const byRevision = Object.fromEntries(sets.map((rs) => [rs.metadata.annotations!['deployment.kubernetes.io/revision'], rs.spec!.replicas]));
    expect(byRevision).to.deep.equal({ '1': 0, '2': 1 });
    await eventually(async () => (await items('pods')).length === 1, 'only the new pod left');
  });

  it('rolls a template change out within maxSurge and maxUnavailable (25% of 4: one pod above, one below), rollout status waiting for it', async function () {
    writeFileSync(join(dir, 'deploy.yaml'), DEPLOYMENT_YAML(4, 'v2'));
    await kubectl(kc, ['apply', '-f', join(dir, 'deploy.yaml')]);
    expect((await kubectl(kc, ['rollout', 'status', 'deployment/web', '--timeout=60s'], 70_000)).code).to.equal(0);
    await eventually(async () => (await items('pods')).length === 4, 'four pods of the second template');
    const oldHash = (await items('pods'))[0]!.metadata.labels!['pod-template-hash']!;
    const before = await coreApi(cluster).listNamespacedPod({ namespace: 'default' });
    const from = before.metadata!.resourceVersion!;
    // Every pod change from before the template change on, to replay what was running at each moment.
    const isReady = (pod: WatchEvent['object']): boolean => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    const replay = (events: WatchEvent[], after?: (pods: WatchEvent['object'][]) => void): WatchEvent['object'][] => {
      const pods = new Map<string, WatchEvent['object']>(before.items.map((p) => [p.metadata!.name!, p]));
      for (const event of events) {
        if (event.type === 'DELETED') pods.delete(event.object.metadata!.name!);
        else pods.set(event.object.metadata!.name!, event.object);
        after?.([...pods.values()].filter((p) => !p.metadata?.deletionTimestamp));
      }
      return [...pods.values()];
    };
    const watched = watchPodsUntil(
      cluster,
      'default',
      (events) => {
        const pods = replay(events);
        return pods.length === 4 && pods.every((p) => p.metadata!.labels!['pod-template-hash'] !== oldHash && isReady(p) && !p.metadata?.deletionTimestamp);
      },
      { resourceVersion: from, timeoutMs: 60_000 },
    );
    writeFileSync(join(dir, 'deploy.yaml'), DEPLOYMENT_YAML(4, 'v3'));
    expect((await kubectl(kc, ['apply', '-f', join(dir, 'deploy.yaml')])).stdout.trim()).to.equal('deployment.apps/web configured');
    const rollout = await kubectl(kc, ['rollout', 'status', 'deployment/web', '--timeout=60s'], 70_000);
    expect(rollout.stdout.trim().split('\n').pop()).to.equal('deployment "web" successfully rolled out');
    const events = await watched;
    let most = 0;
    let fewestReady = Infinity;
    let sideBySide = false;
    replay(events, (running) => {
      most = Math.max(most, running.length);
      fewestReady = Math.min(fewestReady, running.filter(isReady).length);
      const hashes = new Set(running.filter(isReady).map((p) => p.metadata!.labels!['pod-template-hash']));
      if (hashes.size > 1) sideBySide = true;
    });
    // Old and new pods served side by side, never more than 5 pods, never fewer than 3 ready.
    expect(sideBySide).to.equal(true);
    expect(most).to.be.at.most(5);
    expect(fewestReady).to.be.at.least(3);
    const sets = await items('replicasets');
    const byRevision = Object.fromEntries(sets.map((rs) => [rs.metadata.annotations!['deployment.kubernetes.io/revision'], rs.spec!.replicas]));
    expect(byRevision).to.deep.equal({ '1': 0, '2': 0, '3': 4 });
  });

  it('recreates: with strategy Recreate no pod of the new template starts while an old one is left', async function () {
    const before = await coreApi(cluster).listNamespacedPod({ namespace: 'default' });
    const oldNames = new Set(before.items.map((p) => p.metadata!.name!));
    const watched = watchPodsUntil(
      cluster,
      'default',
      (events) => {
        const alive = new Map<string, WatchEvent['object']>(before.items.map((p) => [p.metadata!.name!, p]));
        for (const e of events) (e.type === 'DELETED' ? alive.delete(e.object.metadata!.name!) : alive.set(e.object.metadata!.name!, e.object));
        return alive.size === 4 && [...alive.keys()].every((n) => !oldNames.has(n));
      },
      { resourceVersion: before.metadata!.resourceVersion!, timeoutMs: 60_000 },
    );
    const patched = await kubectl(kc, ['patch', 'deployment', 'web', '--type=merge', '-p', '{"spec":{"strategy":{"type":"Recreate","rollingUpdate":null},"template":{"metadata":{"annotations":{"try":"recreate"}}}}}']);
    expect(patched.stderr).to.equal('');
    expect((await kubectl(kc, ['rollout', 'status', 'deployment/web', '--timeout=60s'], 70_000)).code).to.equal(0);
    const events = await watched;
    const firstNew = events.findIndex((e) => !oldNames.has(e.object.metadata!.name!));
    const lastOldGone = events.map((e) => e.type === 'DELETED' && oldNames.has(e.object.metadata!.name!)).lastIndexOf(true);
    expect(firstNew).to.be.greaterThan(lastOldGone);
  });

  it('refuses a selector that does not match the template labels, and a changed selector, with the real 422', async function () {
    writeFileSync(join(dir, 'bad.yaml'), DEPLOYMENT_YAML(1).replace('name: web,', 'name: bad,').replace('selector: { matchLabels: { app: web } }', 'selector: { matchLabels: { app: other } }'));
    const bad = await kubectl(kc, ['apply', '-f', join(dir, 'bad.yaml')]);
    expect(bad.stderr).to.include('The Deployment "bad" is invalid: spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`');
    const changed = await kubectl(kc, ['patch', 'deployment', 'web', '--type=merge', '-p', '{"spec":{"selector":{"matchLabels":{"tier":"x"}},"template":{"metadata":{"labels":{"tier":"x"}}}}}']);
    expect(changed.stderr).to.include('spec.selector: Invalid value:');
    expect(changed.stderr).to.include('field is immutable');
  });

  it('garbage-collects the ReplicaSets and pods (and their processes) of a deleted Deployment', async function () {
    expect((await kubectl(kc, ['delete', 'deployment', 'web'])).stdout.trim()).to.equal('deployment.apps "web" deleted');
    await eventually(async () => (await items('replicasets')).length === 0 && (await items('pods')).length === 0, 'replica sets and pods gone', 20_000);
    await eventually(() => cluster.podProcesses().length === 0, 'no pod process left', 10_000);
  });
});
