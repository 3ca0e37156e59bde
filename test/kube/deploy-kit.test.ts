import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { startEmulatedCluster, type EmulatedCluster } from '../../src/testing/index.js';
import { eventually, kubectl } from './helpers.js';

const KIT = fileURLToPath(new URL('../../../deploy/kubernetes', import.meta.url));

describe('The deploy kit on the emulated cluster', function () {
  this.timeout(90_000);
  let cluster: EmulatedCluster;

  before(async function () {
    cluster = await startEmulatedCluster();
  });

  after(async function () {
    await cluster?.stop();
  });

  it('applies with kubectl apply -k (restricted namespace, RBAC, Deployment, NetworkPolicies) and rolls out', async function () {
    const kc = cluster.kubeconfigPath;
    const applied = await kubectl(kc, ['apply', '-k', KIT]);
    expect(applied.stderr).to.equal('');
    expect(applied.stdout.trim().split('\n')).to.deep.equal([
      'namespace/flame-example created',
      'serviceaccount/flame-square created',
      'role.rbac.authorization.k8s.io/flame-runners created',
      'rolebinding.rbac.authorization.k8s.io/flame-square-runners created',
      'deployment.apps/flame-square created',
      'networkpolicy.networking.k8s.io/flame-square-parent created',
      'networkpolicy.networking.k8s.io/flame-square-runners created',
    ]);
    const rollout = await kubectl(kc, ['-n', 'flame-example', 'rollout', 'status', 'deployment/flame-square', '--timeout=60s'], 70_000);
    expect(rollout.stdout.trim().split('\n').pop(), rollout.stderr).to.equal('deployment "flame-square" successfully rolled out');
    const can = await kubectl(kc, ['auth', 'can-i', '--list', '-n', 'flame-example', '--as=system:serviceaccount:flame-example:flame-square']);
    expect(can.stdout).to.match(/\npods\s+\[\]\s+\[\]\s+\[get list watch create delete\]/);
    expect((await kubectl(kc, ['delete', 'namespace', 'flame-example', '--timeout=60s'], 70_000)).stdout.trim()).to.equal('namespace "flame-example" deleted');
    await eventually(() => cluster.podProcesses().length === 0, 'no pod process left', 20_000);
  });
});
