import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { waitForPod } from '../kube/helpers.js';
import { NAMESPACE, runnerPods, SERVICE_ACCOUNT, startTestBed, type TestBed } from '../kubernetes/helpers.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BENCH_IMAGE = 'bench-app:1';

describe('flame-actors bench --backend kubernetes (from an app pod of the emulated cluster)', function () {
  this.timeout(150_000);
  let bed: TestBed;

  before(async function () {
    bed = await startTestBed();
    bed.cluster.images.register(BENCH_IMAGE, { command: [process.execPath, 'dist/src/cli/main.js'], workingDir: ROOT });
  });

  after(async function () {
    await bed?.stop();
  });

  it('measures with KubernetesBackend defaults (service account, POD_* env), runner pods built from its pod, and leaves no pod', async function () {
    await bed.api.createNamespacedPod({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'bench-app', labels: { app: 'bench' } },
        spec: {
          serviceAccountName: SERVICE_ACCOUNT,
          restartPolicy: 'Never',
          containers: [{
            name: 'app',
            image: BENCH_IMAGE,
            args: ['bench', '--backend', 'kubernetes', '--runners', '2', '--duration', '3', '--quick', '--json'],
            env: [
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
              { name: 'FLAME_NODE_NAME', value: 'bench@$(POD_IP)' },
            ],
          }],
        },
      },
    });
    const done = await waitForPod(bed.cluster, NAMESPACE, 'bench-app', (p) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed', 140_000);
    const log = await bed.api.readNamespacedPodLog({ namespace: NAMESPACE, name: 'bench-app' });
    expect(done.status!.phase, log).to.equal('Succeeded');
    const rows = JSON.parse(log.slice(log.indexOf('['))) as { name: string; value: number }[];
    const names = rows.map((r) => r.name);
    for (const name of ['placed-dispatch-1', 'placed-dispatch-n', 'placed-query-p50', 'link-ws-pingpong-p50', 'warm-call-p50', 'call-throughput', 'call-throughput-traced', 'cold-call']) {
      expect(names, log).to.include(name);
    }
    // Process-backend rows are not taken on Kubernetes.
    expect(names).not.to.include('idle-runner-rss');
    expect(names).not.to.include('process-spawn-connect');
    for (const row of rows) expect(row.value, row.name).to.be.above(0);
    for (const pool of ['bench-one', 'bench-many', 'bench-cold-0']) expect(await runnerPods(bed.api, pool), pool).to.have.length(0);
  });
});
