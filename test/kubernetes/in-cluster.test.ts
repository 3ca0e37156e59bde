import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { waitForPod } from '../kube/helpers.js';
import { NAMESPACE, runnerPods, SERVICE_ACCOUNT, startTestBed, type TestBed } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const APP_IMAGE = 'shop-app:1';

describe('KubernetesBackend in a pod', function () {
  this.timeout(30_000);
  let bed: TestBed;

  before(async function () {
    bed = await startTestBed();
    bed.cluster.images.register(APP_IMAGE, { command: [process.execPath, 'dist/test/kubernetes/fixtures/shop-app.js'], workingDir: ROOT });
  });

  after(async function () {
    await bed?.stop();
  });

  it('runs with the mounted service account and FLAME_BACKEND=kubernetes, the app image doubling as the runner', async function () {
    if (!bed.cluster.mountsServiceAccount) this.skip(); // needs root for the standard mount path
    await bed.api.createNamespacedPod({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'shop-app', labels: { app: 'shop' } },
        spec: {
          serviceAccountName: SERVICE_ACCOUNT,
          restartPolicy: 'Never',
          containers: [{
            name: 'app',
            image: APP_IMAGE,
            env: [
              { name: 'FLAME_BACKEND', value: 'kubernetes' },
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
              { name: 'FLAME_NODE_NAME', value: 'shop@$(POD_IP)' },
            ],
          }],
        },
      },
    });
    const done = await waitForPod(bed.cluster, NAMESPACE, 'shop-app', (p) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed', 25_000);
    const log = await bed.api.readNamespacedPodLog({ namespace: NAMESPACE, name: 'shop-app' });
    expect(done.status!.phase, log).to.equal('Succeeded');
    const outcome = JSON.parse(log.trim().split('\n').pop()!) as { product: number; runnerPod: string; description: string };
    expect(outcome.product).to.equal(42);
    expect(outcome.runnerPod).to.match(/^shop-app-inside-\w+$/);
    expect(outcome.description).to.equal(`pod ${outcome.runnerPod} (${/\((.*)\)/.exec(outcome.description)![1]})`);
    expect(await runnerPods(bed.api, 'inside')).to.have.length(0);
  });
});
