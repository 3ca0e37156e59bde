import { expect } from 'chai';
import { Agent } from 'node:https';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { CoreV1Api } from '@kubernetes/client-node';
import { startEmulatedCluster, type EmulatedCluster } from '../../src/testing/index.js';
import { coreApi, eventually, isAlive, POD_MARKER, rawRequest, watchPodsUntil } from './helpers.js';

const PODS = 200;

describe('Emulated cluster at scale', function () {
  let cluster: EmulatedCluster;
  let api: CoreV1Api;
  const pids = new Set<number>();

  before(async function () {
    cluster = await startEmulatedCluster();
    // A small process per pod: the test is about the emulator, not about booting 200 Node.js.
    cluster.images.register('sleeper:1', { command: ['sh', '-c', 'sleep 600; true'] });
    api = coreApi(cluster);
  });

  after(async function () {
    await cluster?.stop();
    for (const pid of pids) expect(isAlive(pid), `pod process ${pid} survived`).to.equal(false);
  });

  it(`creates and watches ${PODS} pods to Running without stalling the API server, then removes them all`, async function () {
    this.timeout(180_000);
    const namespace = 'scale';
    await api.createNamespace({ body: { metadata: { name: namespace } } }).catch(() => {});
    const start = await api.listNamespacedPod({ namespace });
    const names = Array.from({ length: PODS }, (_, i) => `scale-${i}`);
    const running = watchPodsUntil(
      cluster,
      namespace,
      (events) => new Set(events.filter((e) => e.object.status?.phase === 'Running').map((e) => e.object.metadata!.name)).size === PODS,
      { resourceVersion: start.metadata!.resourceVersion!, timeoutMs: 150_000 },
    );
    // The API server shares this process: a spawn or file call on its event loop would show as a delay here.
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const latencies: number[] = [];
    let loading = true;
    // The probe keeps one connection open, as a watching client does: it measures request handling,
    // not the queue of TLS handshakes that 200 simultaneous new connections make.
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: cluster.caPem });
    const probe = (async () => {
      while (loading) {
        const t = performance.now();
        const response = await rawRequest(cluster, 'GET', `/api/v1/namespaces/${namespace}`, undefined, {}, agent);
        expect(response.status).to.equal(200);
        latencies.push(performance.now() - t);
      }
    })();
    await Promise.all(
      names.map((name) =>
        api.createNamespacedPod({
          namespace,
          body: { metadata: { name }, spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: 'sleeper:1', args: [POD_MARKER] }] } },
        }),
      ),
    );
    await running;
    loading = false;
    await probe;
    agent.destroy();
    delay.disable();
    for (const p of cluster.podProcesses()) pids.add(p.pid);
    expect(pids.size).to.equal(PODS);
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.floor(latencies.length * 0.99)]!;
    process.stderr.write(`      (${PODS} pods: GET p99 ${p99.toFixed(1)} ms over ${latencies.length} GETs, event-loop delay max ${(delay.max / 1e6).toFixed(0)} ms)\n`);
    // Generous: the emulator's old synchronous spawns stalled the loop for seconds at 100 pods.
    expect(delay.max / 1e6).to.be.below(1000);

    await api.deleteCollectionNamespacedPod({ namespace, gracePeriodSeconds: 0 });
    await eventually(() => cluster.podProcesses().length === 0, 'every pod process gone', 60_000);
    await eventually(async () => (await api.listNamespacedPod({ namespace })).items.length === 0, 'every pod object gone', 60_000);
    // SIGKILLed at once, but a killed process still has to be scheduled to die (on a loaded machine, a while).
    await eventually(() => [...pids].every((pid) => !isAlive(pid)), 'every pod process dead', 20_000).catch(() => {});
    for (const pid of pids) expect(isAlive(pid), `pod process ${pid}`).to.equal(false);
  });
});
