import { expect } from 'chai';
import { Watch, type CoreV1Api } from '@kubernetes/client-node';
import { startEmulatedCluster, type EmulatedCluster } from '../../src/testing/index.js';
import { coreApi, eventually, expectApiError, isAlive, kubeConfigFor, sleeperPod, waitForPod, waitForPodGone, createNamespaces } from './helpers.js';

describe('Emulated cluster faults', function () {
  let cluster: EmulatedCluster;
  let api: CoreV1Api;

  before(async function () {
    cluster = await startEmulatedCluster({ imagePullBackoffMs: 100, restartBackoffMs: { initial: 100, max: 200 } });
    api = coreApi(cluster);
    await createNamespaces(cluster, ['crash', 'image-pull', 'node-death', 'node-eviction', 'start-error', 'unknown-image', 'unschedulable']);
  });

  afterEach(function () {
    cluster?.faults.clear();
  });

  after(async function () {
    await cluster?.stop();
  });

  it('keeps a pod Pending and unschedulable until the fault is cleared', async function () {
    const namespace = 'unschedulable';
    const fault = cluster.faults.keepPending({ namespace, labelSelector: 'app=runner' });
    await api.createNamespacedPod({ namespace, body: sleeperPod('stuck', { metadata: { labels: { app: 'runner' } } }) });
    const pending = await waitForPod(cluster, namespace, 'stuck', (p) => p.status?.conditions?.some((c) => c.type === 'PodScheduled') ?? false);
    expect(pending.status!.phase).to.equal('Pending');
    expect(pending.spec!.nodeName).to.equal(undefined);
    expect(pending.status!.conditions!.find((c) => c.type === 'PodScheduled')).to.deep.include({ status: 'False', reason: 'Unschedulable' });
    expect(fault.remaining).to.equal(0);

    await api.createNamespacedPod({ namespace, body: sleeperPod('unaffected', { metadata: { labels: { app: 'runner' } } }) });
    await waitForPod(cluster, namespace, 'unaffected', (p) => p.status?.phase === 'Running');

    fault.clear();
    await waitForPod(cluster, namespace, 'stuck', (p) => p.status?.phase === 'Running');
    for (const name of ['stuck', 'unaffected']) await api.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 });
  });

  it('fails the image pull with ErrImagePull, then ImagePullBackOff', async function () {
    const namespace = 'image-pull';
    cluster.faults.failImagePull({ namePrefix: 'bad-image-' });
    await api.createNamespacedPod({ namespace, body: sleeperPod('bad-image-1') });
    const failed = await waitForPod(cluster, namespace, 'bad-image-1', (p) => p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ErrImagePull');
    expect(failed.status!.phase).to.equal('Pending');
    expect(failed.status!.containerStatuses![0]!.state!.waiting!.message).to.match(/^failed to pull and unpack image "node:20"/);
    await waitForPod(cluster, namespace, 'bad-image-1', (p) => p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ImagePullBackOff');
    expect(cluster.podProcesses().some((p) => p.name === 'bad-image-1')).to.equal(false);
    await api.deleteNamespacedPod({ namespace, name: 'bad-image-1' });
    await waitForPodGone(cluster, namespace, 'bad-image-1');
  });

  it('reports an image missing from the image table as ErrImagePull', async function () {
    const namespace = 'unknown-image';
    await api.createNamespacedPod({ namespace, body: { metadata: { name: 'nowhere' }, spec: { containers: [{ name: 'main', image: 'registry.example/nothing:1' }] } } });
    const pod = await waitForPod(cluster, namespace, 'nowhere', (p) => p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ErrImagePull');
    expect(pod.status!.containerStatuses![0]!.state!.waiting!.message).to.include('not found in the emulator image table');
    await api.deleteNamespacedPod({ namespace, name: 'nowhere' });
  });

  it('crashes a container at start: Failed under restartPolicy Never, CrashLoopBackOff under Always', async function () {
    const namespace = 'crash';
    cluster.faults.crashOnStart({ namespace }, { exitCode: 42, times: 2 });
    await api.createNamespacedPod({ namespace, body: sleeperPod('once') });
    const failed = await waitForPod(cluster, namespace, 'once', (p) => p.status?.phase === 'Failed');
    expect(failed.status!.containerStatuses![0]!.state!.terminated).to.deep.include({ exitCode: 42, reason: 'Error' });

    await api.createNamespacedPod({ namespace, body: sleeperPod('looping', { spec: { restartPolicy: 'Always' } }) });
    const looping = await waitForPod(cluster, namespace, 'looping', (p) => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 2);
    expect(looping.status!.containerStatuses![0]!.lastState!.terminated!.exitCode).to.equal(42);
    await waitForPod(cluster, namespace, 'looping', (p) => p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff');
    for (const name of ['once', 'looping']) await api.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 });
  });

  it('reports a command that does not exist as StartError', async function () {
    const namespace = 'start-error';
    await api.createNamespacedPod({
      namespace,
      body: { metadata: { name: 'typo' }, spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'node:20', command: ['nodee'] }] } },
    });
    const pod = await waitForPod(cluster, namespace, 'typo', (p) => p.status?.phase === 'Failed');
    expect(pod.status!.containerStatuses![0]!.state!.terminated).to.deep.include({ exitCode: 128, reason: 'StartError' });
    expect(pod.status!.containerStatuses![0]!.state!.terminated!.message).to.include('exec: "nodee": executable file not found in $PATH');
  });

  it('kills a pod process as if its node died, marking the pod Failed with reason NodeLost', async function () {
    const namespace = 'node-death';
    await api.createNamespacedPod({ namespace, body: sleeperPod('doomed') });
    await waitForPod(cluster, namespace, 'doomed', (p) => p.status?.phase === 'Running');
    const pid = cluster.podProcesses().find((p) => p.name === 'doomed')!.pid;
    await cluster.faults.killNode(namespace, 'doomed');
    expect(isAlive(pid)).to.equal(false);
    const pod = await api.readNamespacedPod({ namespace, name: 'doomed' });
    expect(pod.status).to.deep.include({ phase: 'Failed', reason: 'NodeLost' });
    expect(pod.status!.conditions!.find((c) => c.type === 'Ready')!.status).to.equal('False');
    await api.deleteNamespacedPod({ namespace, name: 'doomed' });
    await waitForPodGone(cluster, namespace, 'doomed');
  });

  it('can also delete the pod of a dead node, as taint-based eviction does', async function () {
    const namespace = 'node-eviction';
    await api.createNamespacedPod({ namespace, body: sleeperPod('evicted') });
    await waitForPod(cluster, namespace, 'evicted', (p) => p.status?.phase === 'Running');
    await cluster.faults.killNode(namespace, 'evicted', { afterwards: 'delete' });
    await waitForPodGone(cluster, namespace, 'evicted');
  });

  it('drops watch connections mid-stream', async function () {
    const watch = new Watch(kubeConfigFor(cluster));
    let controller: AbortController | undefined;
    let opened = false;
    const ended = new Promise<unknown>((resolve) => {
      void watch
        .watch('/api/v1/namespaces/dropped/pods', {}, () => {}, (error) => resolve(error ?? 'closed'))
        .then((c) => {
          controller = c;
          opened = true;
        });
    });
    await eventually(() => opened, 'the watch to be open');
    let dropped = 0;
    await eventually(() => (dropped += cluster.faults.dropWatches()) > 0, 'a watch to drop');
    expect(await ended).to.not.equal(undefined);
    controller?.abort();
  });

  it('answers 429 Too Many Requests with Retry-After for the next N requests', async function () {
    cluster.faults.failRequests({ code: 429, count: 2, retryAfterSeconds: 3, verb: 'list', resource: 'pods' });
    for (let i = 0; i < 2; i++) {
      const status = await expectApiError(api.listNamespacedPod({ namespace: 'default' }));
      expect(status).to.deep.include({ httpCode: 429, reason: 'TooManyRequests', message: 'Too many requests, please try again later.' });
      expect(status.details!.retryAfterSeconds).to.equal(3);
      expect(status.headers['retry-after']).to.equal('3');
    }
    await api.listNamespacedPod({ namespace: 'default' });
  });

  it('answers 500 InternalError for the next N requests', async function () {
    const fault = cluster.faults.failRequests({ code: 500, count: 1 });
    const status = await expectApiError(api.readNamespacedSecret({ namespace: 'default', name: 'any' }));
    expect(status).to.deep.include({ httpCode: 500, reason: 'InternalError' });
    expect(fault.remaining).to.equal(0);
    const next = await expectApiError(api.readNamespacedSecret({ namespace: 'default', name: 'any' }));
    expect(next.reason).to.equal('NotFound');
  });

  it('refuses nonsense fault settings with a clear error', function () {
    expect(() => cluster.faults.failRequests({ code: 404 as unknown as 429 })).to.throw(RangeError, /code must be 429 or 500/);
    expect(() => cluster.faults.keepPending({}, { times: 0 })).to.throw(RangeError, /times must be a positive integer/);
    expect(() => cluster.faults.crashOnStart({}, { exitCode: 0 })).to.throw(RangeError, /exitCode/);
    expect(() => cluster.faults.keepPending({ labelSelector: 'a in (' })).to.throw(/unable to parse requirement/);
  });
});
