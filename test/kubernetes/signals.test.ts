import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../helpers/wait.js';
import { NAMESPACE, runnerPods, SERVICE_ACCOUNT, startTestBed, type TestBed } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const APP_IMAGE = 'signal-app:1';
const GRACE_SECONDS = 10;

describe('stopOnSignals in a parent pod', function () {
  this.timeout(60_000);
  let bed: TestBed;

  before(async function () {
    bed = await startTestBed();
    bed.cluster.images.register(APP_IMAGE, { command: [process.execPath, 'dist/test/kubernetes/fixtures/signal-app.js'], workingDir: ROOT });
  });

  after(async function () {
    await bed?.stop();
  });

  it('SIGTERM to the parent pod stops its pools within the grace period, leaving no runner pod, Secret or process', async function () {
    await bed.api.createNamespacedPod({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'signal-app', labels: { app: 'signal' } },
        spec: {
          serviceAccountName: SERVICE_ACCOUNT,
          terminationGracePeriodSeconds: GRACE_SECONDS,
          restartPolicy: 'Never',
          containers: [{
            name: 'app',
            image: APP_IMAGE,
            env: [
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
              { name: 'FLAME_NODE_NAME', value: 'signal@$(POD_IP)' },
            ],
          }],
        },
      },
    });
    const log = () => bed.api.readNamespacedPodLog({ namespace: NAMESPACE, name: 'signal-app' }).catch(() => '');
    await waitFor(async () => (await log()).includes('ready'), 'the app to be ready with its runners', 30_000, 100);
    expect(await log()).to.include('ready sk-signal-test');
    const runners = await runnerPods(bed.api, 'sig');
    expect(runners).to.have.length(2);
    expect(JSON.stringify(runners), 'the secret env is not in the runner pods').not.to.include('sk-signal-test');
    const pids = bed.cluster.podProcesses().map((p) => p.pid);

    const deletedAt = performance.now();
    await bed.api.deleteNamespacedPod({ namespace: NAMESPACE, name: 'signal-app' });
    await waitFor(async () => {
      const pods = await bed.api.listNamespacedPod({ namespace: NAMESPACE });
      return pods.items.every((p) => p.metadata!.name !== 'signal-app' && p.metadata!.labels?.['flame-actors/pool'] !== 'sig');
    }, 'the parent and its runner pods to be gone', GRACE_SECONDS * 1000 + 5000, 100);
    const ms = performance.now() - deletedAt;
    expect(ms).to.be.below(GRACE_SECONDS * 1000);
    const secrets = await bed.api.listNamespacedSecret({ namespace: NAMESPACE, labelSelector: 'flame-actors/pool=sig' });
    expect(secrets.items).to.have.length(0);
    const alive = pids.filter((pid) => { try { process.kill(pid, 0); return true; } catch { return false; } });
    expect(alive).to.deep.equal([]);
    console.log(`      (parent and runners gone ${Math.round(ms)} ms after the deletion; grace ${GRACE_SECONDS} s)`);
  });
});
