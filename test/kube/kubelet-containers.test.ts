import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import { startEmulatedCluster, type EmulatedCluster } from '../../src/testing/index.js';
import { coreApi, eventually, kubectl, kubectlUntil, nodePod, POD_MARKER, waitForPod } from './helpers.js';

const SLEEPER = "console.log('started', process.env.VERSION ?? ''); process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000);";

describe('Emulated kubelet containers', function () {
  let cluster: EmulatedCluster;
  let api: CoreV1Api;
  let kubeconfig: string;

  before(async function () {
    cluster = await startEmulatedCluster({ restartBackoffMs: { initial: 100, max: 200 } });
    // A second image name for the same Node.js, so that an image change is visible.
    cluster.images.register('node-next', { command: [process.execPath], env: { VERSION: 'next' } }, { anyTag: true });
    api = coreApi(cluster);
    kubeconfig = join(tmpdir(), `kubelet-containers-${process.pid}.kubeconfig`);
    writeFileSync(kubeconfig, cluster.kubeconfigFor(cluster.adminToken));
  });

  after(async function () {
    await cluster?.stop();
  });

  it('runs every container of a pod, each with its own logs', async function () {
    const pod: V1Pod = {
      metadata: { name: 'two' },
      spec: {
        restartPolicy: 'Never',
        terminationGracePeriodSeconds: 2,
        containers: ['left', 'right'].map((name) => ({ name, image: 'node:20', command: ['node', '-e', `console.log('I am ${name}'); setInterval(() => {}, 1000)`, POD_MARKER] })),
      },
    };
    await api.createNamespacedPod({ namespace: 'default', body: pod });
    const running = await waitForPod(cluster, 'default', 'two', (p) => (p.status?.containerStatuses ?? []).filter((s) => s.ready).length === 2);
    expect(running.status!.phase).to.equal('Running');
    expect(running.status!.conditions!.find((c) => c.type === 'Ready')!.status).to.equal('True');
    expect(cluster.podProcesses().filter((p) => p.name === 'two')).to.have.length(2);
    const right = await kubectlUntil(kubeconfig, ['logs', 'two', '-c', 'right'], (out) => out.includes('I am'), 'the right container logs');
    expect(right).to.equal('I am right\n');
    const ready = await kubectl(kubeconfig, ['get', 'pod', 'two', '--no-headers']);
    expect(ready.stdout).to.match(/^two\s+2\/2\s+Running\s+0\s/);
    await api.deleteNamespacedPod({ namespace: 'default', name: 'two' });
    await eventually(() => cluster.podProcesses().every((p) => p.name !== 'two'), 'the two processes gone');
  });

  it('restarts a container whose image is patched, counting a restart, and serves the old logs with --previous', async function () {
    await api.createNamespacedPod({ namespace: 'default', body: nodePod('patched', SLEEPER, { spec: { restartPolicy: 'Never' } }) });
    await waitForPod(cluster, 'default', 'patched', (p) => p.status?.containerStatuses?.[0]?.ready === true);
    await kubectlUntil(kubeconfig, ['logs', 'patched'], (out) => out === 'started \n', 'the first logs');
    const before = cluster.podProcesses().find((p) => p.name === 'patched')!.pid;

    const patch = await kubectl(kubeconfig, ['set', 'image', 'pod/patched', 'main=node-next:1']);
    expect(patch.code, patch.stderr).to.equal(0);
    const restarted = await waitForPod(cluster, 'default', 'patched', (p) => p.status?.containerStatuses?.[0]?.restartCount === 1 && p.status.containerStatuses[0].ready === true);
    const status = restarted.status!.containerStatuses![0]!;
    expect(status.image).to.equal('node-next:1');
    expect(status.lastState?.terminated?.exitCode).to.equal(0);
    expect(restarted.status!.phase).to.equal('Running');
    const after = cluster.podProcesses().find((p) => p.name === 'patched')!.pid;
    expect(after).to.not.equal(before);

    expect(await kubectlUntil(kubeconfig, ['logs', 'patched'], (out) => out.length > 0, 'the new logs')).to.equal('started next\n');
    const previous = await kubectl(kubeconfig, ['logs', 'patched', '--previous']);
    expect(previous.code, previous.stderr).to.equal(0);
    expect(previous.stdout).to.equal('started \n');
    const row = await kubectl(kubeconfig, ['get', 'pod', 'patched', '--no-headers']);
    expect(row.stdout).to.match(/^patched\s+1\/1\s+Running\s+1 \(\S+ ago\)\s/);
    await api.deleteNamespacedPod({ namespace: 'default', name: 'patched', gracePeriodSeconds: 0 });
  });

  it('serves kubectl logs --previous of a crash-looping container once it has restarted', async function () {
    await api.createNamespacedPod({ namespace: 'default', body: nodePod('looping', 'console.log("attempt", Date.now()); process.exit(2)', { spec: { restartPolicy: 'Always' } }) });
    await waitForPod(cluster, 'default', 'looping', (p) => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1);
    const previous = await kubectlUntil(kubeconfig, ['logs', 'looping', '--previous'], (out) => out.startsWith('attempt'), 'the previous logs');
    expect(previous).to.match(/^attempt \d+\n$/);
    await api.deleteNamespacedPod({ namespace: 'default', name: 'looping', gracePeriodSeconds: 0 });
  });

  it('gives resourceFieldRef the limit, the request, or the node allocatable, divided by the divisor', async function () {
    const script = "console.log(JSON.stringify({ a: process.env.CPU_LIMIT_M, b: process.env.MEM_REQUEST_MI, c: process.env.CPU_UNSET, d: process.env.MEM_LIMIT, e: process.env.OTHER_CPU }));";
    const ref = (resource: string, divisor?: string, containerName?: string) => ({
      resourceFieldRef: { resource, ...(divisor ? { divisor } : {}), ...(containerName ? { containerName } : {}) },
    });
    const pod: V1Pod = {
      metadata: { name: 'resources' },
      spec: {
        restartPolicy: 'Never',
        containers: [
          {
            name: 'main',
            image: 'node:20',
            command: ['node', '-e', script, POD_MARKER],
            resources: { limits: { cpu: '500m', memory: '256Mi' }, requests: { memory: '100Mi' } },
            env: [
              { name: 'CPU_LIMIT_M', valueFrom: ref('limits.cpu', '1m') },
              { name: 'MEM_REQUEST_MI', valueFrom: ref('requests.memory', '1Mi') },
              { name: 'MEM_LIMIT', valueFrom: ref('limits.memory') },
              { name: 'OTHER_CPU', valueFrom: ref('limits.cpu', undefined, 'side') },
            ],
          },
          { name: 'side', image: 'node:20', command: ['node', '-e', 'setTimeout(() => {}, 100)', POD_MARKER], env: [] },
        ],
      },
    };
    pod.spec!.containers[0]!.env!.push({ name: 'CPU_UNSET', valueFrom: ref('limits.cpu', undefined, 'side') });
    await api.createNamespacedPod({ namespace: 'default', body: pod });
    await waitForPod(cluster, 'default', 'resources', (p) => p.status?.phase === 'Succeeded');
    const output = await api.readNamespacedPodLog({ namespace: 'default', name: 'resources', container: 'main' });
    const values = JSON.parse(output.trim()) as Record<string, string>;
    expect(values).to.deep.equal({
      a: '500',
      b: '100',
      c: String(availableParallelism()),
      d: String(256 * 1024 * 1024),
      e: String(availableParallelism()),
    });
  });
});
