import { expect } from 'chai';
import type { V1Pod } from '@kubernetes/client-node';
import { KubernetesBackend } from '../../src/backends/kubernetes/backend.js';
import { KubernetesClient } from '../../src/backends/kubernetes/client.js';
import { PodWatcher } from '../../src/backends/kubernetes/pod-watcher.js';
import type { Pool } from '../../src/flame/pool.js';
import { RunnerDownError } from '../../src/errors.js';
import { startNode } from '../../src/cluster/node.js';
import { createLogger, type LogLevel } from '../../src/log.js';
import { startPool } from '../helpers/pools.js';
import { nextEvent, settlesWithin, waitFor } from '../helpers/wait.js';
import { startBlackholeProxy, type BlackholeProxy } from './blackhole-proxy.js';
import { NAMESPACE, podNameOf, runnerPods, SLEEPER_IMAGE, startTestBed, type TestBed } from './helpers.js';

/**
 * What the API server does for an eviction (POST pods/NAME/eviction): it marks the pod with a
 * DisruptionTarget condition, then deletes it with its grace period.
 */
/** Evicts a pod through the Eviction API, as `kubectl drain` and the cluster autoscaler do. */
async function evict(bed: TestBed, name: string): Promise<void> {
  await bed.api.createNamespacedPodEviction({
    namespace: NAMESPACE,
    name,
    body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace: NAMESPACE } },
  });
}

describe('KubernetesBackend on a real cluster\'s bad days', function () {
  this.timeout(60_000);
  let bed: TestBed;
  let proxy: BlackholeProxy | undefined;
  let parents = 0;

  before(async function () {
    bed = await startTestBed();
  });

  after(async function () {
    await bed?.stop();
  });

  afterEach(async function () {
    bed?.cluster.faults.clear();
    await proxy?.close();
    proxy = undefined;
  });

  async function pool(name: string, backendOptions = {}, extra = {}): Promise<Pool> {
    const podName = `shop-bad-${++parents}`;
    await bed.createParentPod(podName);
    return startPool({
      name, backend: new KubernetesBackend(bed.options(podName, backendOptions)), node: bed.node, max: 1, shutdownTimeout: 1000, failsafeTimeout: 3000, log: false, ...extra,
    });
  }

  it('a boot is not stalled by a watch that went silent without a FIN: it reads its pod directly', async function () {
    proxy = await startBlackholeProxy('127.0.0.1', bed.cluster.port);
    const p = await pool('silent', { kubeconfig: bed.kubeconfigVia(proxy.url) }, { bootTimeout: 40_000 });
    expect(proxy.silence(), 'connections silenced (the watch among them)').to.be.greaterThan(0);
    const { value, ms } = await settlesWithin(p.call(() => 'booted'), 15_000, 'a call needing a boot');
    expect(value).to.equal('booted');
    console.log(`      (booted with a silent watch in ${Math.round(ms)} ms)`);
  });

  it('an evicted runner\'s calls reject with RunnerDownError naming the eviction, and the pool replaces its min runner', async function () {
    const p = await pool('evicted', {}, { min: 1 });
    const [first] = p.status().runners;
    const call = p.call(async () => {
      await new Promise((resolve) => setTimeout(resolve, 20_000));
      return 'finished';
    });
    call.catch(() => {});
    await waitFor(() => p.status().runners[0]?.load === 1, 'the call to be running');
    const replaced = nextEvent<[{ id: string }]>(p, 'runnerUp', 30_000);
    await evict(bed, podNameOf(first!.description));
    const { error } = await settlesWithin(call, 20_000, 'the call on the evicted runner');
    expect(error).to.be.instanceOf(RunnerDownError);
    expect((error as Error).message).to.match(/is being evicted \(EvictionByEvictionAPI/);
    const [up] = await replaced;
    expect(up.id).not.to.equal(first!.id);
  });

  it('pool.stop() retries deletes that keep failing within its deadline, and leaves nothing', async function () {
    const p = await pool('flaky-deletes');
    await p.call(() => 1);
    bed.cluster.faults.failRequests({ code: 500, count: 16, verb: 'delete' });
    const { ms } = await settlesWithin(p.stop(), 20_000, 'pool.stop()');
    expect(ms).to.be.below(15_000);
    await waitFor(async () => (await runnerPods(bed.api, 'flaky-deletes')).length === 0, 'the runner pod to be gone', 10_000, 100);
    const secrets = await bed.api.listNamespacedSecret({ namespace: NAMESPACE, labelSelector: 'flame-actors/pool=flaky-deletes' });
    expect(secrets.items).to.have.length(0);
  });

  it('with omitOwnerReference, Pool.start deletes the runner pods and cookie Secret of a parent pod that died without pool.stop()', async function () {
    const dead = `shop-bad-${++parents}`;
    await bed.createParentPod(dead);
    const leaky = await startPool({
      name: 'orphaned', backend: new KubernetesBackend(bed.options(dead, { omitOwnerReference: true })), node: bed.node, min: 1, max: 1, shutdownTimeout: 1000, log: false,
    });
    const [orphan] = await runnerPods(bed.api, 'orphaned');
    // The parent pod dies (its process would be gone with it: this pool is never stopped before the sweep).
    await bed.api.deleteNamespacedPod({ namespace: NAMESPACE, name: dead, gracePeriodSeconds: 0 });
    expect((await runnerPods(bed.api, 'orphaned')).map((p) => p.metadata!.name), 'nothing cascades without an owner').to.include(orphan!.metadata!.name);
    // The new parent's pool has the same name: another app process, with its own node.
    const restarted = `shop-bad-${++parents}`;
    await bed.createParentPod(restarted);
    const otherNode = await startNode({ name: 'shop2@127.0.0.1', port: 0, cookie: 'c0ffee', log: false });
    try {
      const next = await startPool({
        name: 'orphaned', backend: new KubernetesBackend(bed.options(restarted, { omitOwnerReference: true })), node: otherNode, max: 1, shutdownTimeout: 1000, log: false,
      });
      await waitFor(async () => !(await runnerPods(bed.api, 'orphaned')).some((p) => p.metadata!.name === orphan!.metadata!.name), 'the orphan to be deleted', 10_000, 100);
      const secrets = await bed.api.listNamespacedSecret({ namespace: NAMESPACE, labelSelector: 'flame-actors/pool=orphaned' });
      expect(secrets.items.map((x) => x.metadata!.name)).not.to.include(`${dead}-orphaned-flame-cookie`);
      await next.stop();
    } finally {
      await leaky.stop();
      await otherNode.stop();
    }
  });

  it('pool.stop() ends within its deadline when deletes never succeed, and reports what is left', async function () {
    const lines: string[] = [];
    const podName = `shop-bad-${++parents}`;
    await bed.createParentPod(podName);
    const p = await startPool({
      name: 'stuck-deletes', backend: new KubernetesBackend(bed.options(podName, { log: undefined })), node: bed.node, max: 1, shutdownTimeout: 1000,
      log: 'warn', logSink: (_level: LogLevel, line: string) => lines.push(line),
    });
    await p.call(() => 1);
    const fault = bed.cluster.faults.failRequests({ code: 500, count: Infinity, verb: 'delete' });
    const { ms } = await settlesWithin(p.stop(), 30_000, 'pool.stop()');
    fault.clear();
    expect(ms).to.be.below(20_000);
    expect(lines.join('\n')).to.match(/left behind after 10000 ms: pod shop-bad-\d+-stuck-deletes-\w+, Secret shop-bad-\d+-stuck-deletes-flame-cookie/);
  });
});

describe('PodWatcher on a silent connection', function () {
  this.timeout(30_000);
  let bed: TestBed;
  let proxy: BlackholeProxy;
  let watcher: PodWatcher | undefined;

  before(async function () {
    bed = await startTestBed({ bookmarkIntervalMs: 500 });
    proxy = await startBlackholeProxy('127.0.0.1', bed.cluster.port);
  });

  after(async function () {
    watcher?.stop();
    await proxy?.close();
    await bed?.stop();
  });

  it('notices a connection that went silent within about two bookmark intervals and resumes', async function () {
    const seen: string[] = [];
    const client = KubernetesClient.create({ kubeconfig: bed.kubeconfigVia(proxy.url), tokenPath: '' });
    watcher = new PodWatcher({ client, namespace: NAMESPACE, labelSelector: 'app=quiet', logger: createLogger(false), onEvent: (type, pod) => seen.push(`${type} ${pod.metadata!.name}`) });
    await watcher.start();
    const w = watcher;
    await waitFor(() => w.silenceLimitMs < 5000, 'the bookmark interval to be learned', 10_000, 50);
    expect(proxy.silence()).to.be.greaterThan(0);
    const pod: V1Pod = { metadata: { name: 'quiet-a', labels: { app: 'quiet' } }, spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: SLEEPER_IMAGE }] } };
    const silencedAt = performance.now();
    await bed.api.createNamespacedPod({ namespace: NAMESPACE, body: pod });
    await waitFor(() => seen.includes('ADDED quiet-a'), 'the pod created after the silence', 10_000, 20);
    const ms = performance.now() - silencedAt;
    expect(w.reconnects).to.be.greaterThan(0);
    expect(ms).to.be.below(5000);
    console.log(`      (silent watch replaced after ${Math.round(ms)} ms; bookmarks every 500 ms)`);
    await bed.api.deleteNamespacedPod({ namespace: NAMESPACE, name: 'quiet-a', gracePeriodSeconds: 0 });
  });
});
