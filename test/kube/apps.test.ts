import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulatedCluster, type EmulatedCluster } from '../../src/testing/index.js';
import { eventually, kubectl, kubectlUntil, webDeploymentYaml } from './helpers.js';

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
