import { expect } from 'chai';
import { ADD, DELETE, ERROR, makeInformer, Watch, type CoreV1Api } from '@kubernetes/client-node';
import { startEmulatedCluster, type EmulatedCluster } from '../../src/testing/index.js';
import { coreApi, eventually, kubeConfigFor, nodePod, rawRequest, sleeperPod, watchPodsUntil, createNamespaces } from './helpers.js';

describe('Emulated API server watches', function () {
  let cluster: EmulatedCluster;
  let api: CoreV1Api;

  before(async function () {
    cluster = await startEmulatedCluster({ bookmarkIntervalMs: 200 });
    api = coreApi(cluster);
    await createNamespaces(cluster, ['bookmarks', 'expired', 'informed', 'initial', 'lifecycle', 'resume', 'selected']);
  });

  after(async function () {
    await cluster?.stop();
  });

  it('streams a pod going Pending, Running, then away', async function () {
    const namespace = 'lifecycle';
    const start = await api.listNamespacedPod({ namespace });
    const seen = watchPodsUntil(cluster, namespace, (events) => events.some((e) => e.type === 'DELETED'), {
      resourceVersion: start.metadata!.resourceVersion!,
    });
    await api.createNamespacedPod({ namespace, body: sleeperPod('watched') });
    await watchPodsUntil(cluster, namespace, (events) => events.some((e) => e.object.status?.phase === 'Running'), { name: 'watched' });
    await api.deleteNamespacedPod({ namespace, name: 'watched' });
    const events = await seen;

    expect(events[0]).to.deep.include({ type: 'ADDED' });
    expect(events[0]!.object.status!.phase).to.equal('Pending');
    const phases = events.map((e) => e.object.status?.phase);
    expect(phases).to.include('Running');
    const running = events.find((e) => e.object.status?.phase === 'Running')!.object;
    expect(running.status!.podIP).to.match(/^127\.1\.\d+\.\d+$/);
    expect(running.status!.containerStatuses![0]!.state!.running).to.have.property('startedAt');
    expect(running.status!.conditions!.find((c) => c.type === 'Ready')!.status).to.equal('True');
    const terminating = events.find((e) => e.object.metadata?.deletionTimestamp !== undefined);
    expect(terminating?.type).to.equal('MODIFIED');
    expect(events[events.length - 1]!.type).to.equal('DELETED');
    const versions = events.map((e) => Number(e.object.metadata!.resourceVersion));
    expect([...versions].sort((a, b) => a - b)).to.deep.equal(versions);
  });

  it('marks a pod deleted with grace 0 before removing it: MODIFIED then DELETED, both with deletionTimestamp', async function () {
    const namespace = 'lifecycle';
    await api.createNamespacedPod({ namespace, body: sleeperPod('forced') });
    await watchPodsUntil(cluster, namespace, (events) => events.some((e) => e.object.status?.phase === 'Running'), { name: 'forced' });
    const start = await api.readNamespacedPod({ namespace, name: 'forced' });
    const seen = watchPodsUntil(cluster, namespace, (events) => events.some((e) => e.type === 'DELETED'), {
      name: 'forced', resourceVersion: start.metadata!.resourceVersion!,
    });
    const answer = await api.deleteNamespacedPod({ namespace, name: 'forced', gracePeriodSeconds: 0 });
    expect(answer.metadata!.deletionTimestamp, 'the answer carries the deletion mark').to.not.equal(undefined);
    expect(answer.metadata!.deletionGracePeriodSeconds).to.equal(0);
    const events = await seen;
    expect(events.map((e) => e.type)).to.deep.equal(['MODIFIED', 'DELETED']);
    for (const e of events) {
      expect(e.object.metadata!.deletionTimestamp, e.type).to.not.equal(undefined);
      expect(e.object.metadata!.deletionGracePeriodSeconds, e.type).to.equal(0);
    }
  });

  it('resumes from a resourceVersion, replaying what happened since', async function () {
    const namespace = 'resume';
    const before = await api.listNamespacedPod({ namespace });
    await api.createNamespacedPod({ namespace, body: sleeperPod('first') });
    await api.createNamespacedPod({ namespace, body: sleeperPod('second') });
    const events = await watchPodsUntil(
      cluster,
      namespace,
      (seen) => ['first', 'second'].every((n) => seen.some((e) => e.type === 'ADDED' && e.object.metadata!.name === n)),
      { resourceVersion: before.metadata!.resourceVersion! },
    );
    const added = events.filter((e) => e.type === 'ADDED').map((e) => e.object.metadata!.name);
    expect(added).to.deep.equal(['first', 'second']);
    expect(events[0]!.type).to.equal('ADDED');
    for (const name of ['first', 'second']) await api.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 });
  });

  it('starts with the current state as ADDED events when no resourceVersion is given', async function () {
    const namespace = 'initial';
    await api.createNamespacedSecret({ namespace, body: { metadata: { name: 'not-a-pod' } } });
    await api.createNamespacedPod({ namespace, body: sleeperPod('existing') });
    const events = await watchPodsUntil(cluster, namespace, (seen) => seen.length >= 1);
    expect(events[0]!.type).to.equal('ADDED');
    expect(events[0]!.object.metadata!.name).to.equal('existing');
    await api.deleteNamespacedPod({ namespace, name: 'existing', gracePeriodSeconds: 0 });
  });

  it('answers a resourceVersion older than the kept window with 410 Gone (Expired), in the stream', async function () {
    const namespace = 'expired';
    const old = await api.listNamespacedPod({ namespace });
    await api.createNamespacedPod({ namespace, body: sleeperPod('churn') });
    cluster.compactHistory();

    const raw = await rawRequest(cluster, 'GET', `/api/v1/namespaces/${namespace}/pods?watch=true&resourceVersion=${old.metadata!.resourceVersion}`);
    expect(raw.status).to.equal(200);
    const event = JSON.parse(raw.text.trim().split('\n')[0]!) as { type: string; object: { reason: string; code: number; message: string } };
    expect(event.type).to.equal('ERROR');
    expect(event.object).to.deep.include({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410 });
    expect(event.object.message).to.match(new RegExp(`^too old resource version: ${old.metadata!.resourceVersion} \\(\\d+\\)$`));

    const events = await watchPodsUntil(cluster, namespace, (seen) => seen.some((e) => e.type === 'ERROR'), {
      resourceVersion: old.metadata!.resourceVersion!,
    });
    expect((events[0]!.object as unknown as { code: number }).code).to.equal(410);

    // Let the kubelet settle the pod first, so that the only change after `fresh` is the deletion.
    await watchPodsUntil(cluster, namespace, (seen) => seen.some((e) => e.object.status?.containerStatuses?.[0]?.ready === true), { name: 'churn' });
    const fresh = await api.listNamespacedPod({ namespace });
    await api.deleteNamespacedPod({ namespace, name: 'churn', gracePeriodSeconds: 0 });
    const resumed = await watchPodsUntil(cluster, namespace, (seen) => seen.some((e) => e.type === 'DELETED'), {
      resourceVersion: fresh.metadata!.resourceVersion!,
    });
    // A pod deleted at grace 0 is first marked (as kube-apiserver does), then removed.
    expect(resumed.map((e) => e.type)).to.deep.equal(['MODIFIED', 'DELETED']);
  });

  it('expires history beyond historyLimit changes', async function () {
    const small = await startEmulatedCluster({ historyLimit: 3 });
    try {
      const smallApi = coreApi(small);
      const start = await smallApi.listNamespacedSecret({ namespace: 'default' });
      for (let i = 0; i < 5; i++) await smallApi.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: `s${i}` } } });
      const raw = await rawRequest(small, 'GET', `/api/v1/namespaces/default/secrets?watch=1&resourceVersion=${start.metadata!.resourceVersion}`);
      expect(JSON.parse(raw.text.split('\n')[0]!)).to.deep.include({ type: 'ERROR' });
    } finally {
      await small.stop();
    }
  });

  it('sends bookmarks carrying the current resourceVersion when asked for', async function () {
    const namespace = 'bookmarks';
    const list = await api.listNamespacedPod({ namespace });
    const events = await watchPodsUntil(cluster, namespace, (seen) => seen.some((e) => e.type === 'BOOKMARK'), {
      resourceVersion: list.metadata!.resourceVersion!,
      query: { allowWatchBookmarks: true },
    });
    const bookmark = events.find((e) => e.type === 'BOOKMARK')!.object;
    expect(bookmark.kind).to.equal('Pod');
    expect(Number(bookmark.metadata!.resourceVersion)).to.be.at.least(Number(list.metadata!.resourceVersion));
  });

  it('ends the stream after timeoutSeconds', async function () {
    const started = Date.now();
    const watch = new Watch(kubeConfigFor(cluster));
    let controller: AbortController | undefined;
    const ended = await new Promise<unknown>((resolve) => {
      void watch.watch('/api/v1/namespaces/quiet/pods', { timeoutSeconds: 1 }, () => {}, resolve).then((c) => (controller = c));
    });
    controller?.abort();
    expect(ended ?? null).to.equal(null);
    expect(Date.now() - started).to.be.within(900, 5000);
  });

  it("keeps client-node's informer in sync across an expired resourceVersion and a dropped connection", async function () {
    const namespace = 'informed';
    const informer = makeInformer(kubeConfigFor(cluster), `/api/v1/namespaces/${namespace}/pods`, () => api.listNamespacedPod({ namespace }));
    const names = new Set<string>();
    let errors = 0;
    informer.on(ADD, (pod) => names.add(pod.metadata!.name!));
    informer.on(DELETE, (pod) => names.delete(pod.metadata!.name!));
    // client-node's informer stops on any error other than a timeout: restart it, unless the test
    // has stopped it (a restart after stop would leave a watch connection open after the test).
    let stopped = false;
    informer.on(ERROR, () => {
      errors++;
      if (!stopped) void informer.start();
    });
    await informer.start();
    try {
      await api.createNamespacedPod({ namespace, body: sleeperPod('one') });
      await eventually(() => names.has('one'), 'the informer to see pod one');

      // A clean end of the watch: the informer re-watches from its resourceVersion, now compacted
      // away, gets 410 and relists.
      cluster.compactHistory();
      await eventually(() => cluster.faults.dropWatches({ cleanly: true }) > 0, 'the informer watch to end');
      await api.createNamespacedPod({ namespace, body: sleeperPod('two') });
      await eventually(() => names.has('two'), 'the informer to relist and see pod two');

      // A broken connection: the informer reports an error, is restarted, and catches up.
      await eventually(() => cluster.faults.dropWatches() > 0, 'the informer watch to be cut');
      await api.deleteNamespacedPod({ namespace, name: 'one', gracePeriodSeconds: 0 });
      await eventually(() => !names.has('one'), 'the informer to see pod one go');
      expect(errors).to.be.at.least(1);
    } finally {
      stopped = true;
      await informer.stop();
      for (const name of ['one', 'two']) await api.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 }).catch(() => {});
    }
  });

  it('filters events by label selector, and reports an object leaving the selection as DELETED', async function () {
    const namespace = 'selected';
    const list = await api.listNamespacedPod({ namespace });
    const seen = watchPodsUntil(cluster, namespace, (events) => events.some((e) => e.type === 'DELETED'), {
      resourceVersion: list.metadata!.resourceVersion!,
      query: { labelSelector: 'app=runner' },
    });
    await api.createNamespacedPod({ namespace, body: nodePod('other', 'setTimeout(() => {}, 60000)', { metadata: { labels: { app: 'web' } } }) });
    await api.createNamespacedPod({ namespace, body: nodePod('runner', 'setTimeout(() => {}, 60000)', { metadata: { labels: { app: 'runner' } } }) });
    await rawRequest(cluster, 'PATCH', `/api/v1/namespaces/${namespace}/pods/runner`, { metadata: { labels: { app: 'retired' } } }, { 'Content-Type': 'application/merge-patch+json' });
    const events = await seen;
    expect(events.every((e) => e.object.metadata!.name === 'runner')).to.equal(true);
    expect(events[events.length - 1]!.type).to.equal('DELETED');
    expect(events[events.length - 1]!.object.metadata!.labels!.app).to.equal('retired');
    for (const name of ['other', 'runner']) await api.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 });
  });
});
