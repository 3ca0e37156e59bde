import { expect } from 'chai';
import type { V1Pod } from '@kubernetes/client-node';
import { KubernetesBackend } from '../../src/backends/kubernetes/backend.js';
import { KubernetesClient } from '../../src/backends/kubernetes/client.js';
import { PodWatcher, type PodEventType } from '../../src/backends/kubernetes/pod-watcher.js';
import { createLogger } from '../../src/log.js';
import { waitFor } from '../helpers/wait.js';
import { NAMESPACE, SLEEPER_IMAGE, startTestBed, type TestBed } from './helpers.js';

describe('PodWatcher', function () {
  this.timeout(20_000);
  let bed: TestBed;
  let watcher: PodWatcher | undefined;
  const events: { type: PodEventType; name: string }[] = [];

  before(async function () {
    bed = await startTestBed();
  });

  after(async function () {
    await bed?.stop();
  });

  afterEach(function () {
    watcher?.stop();
    watcher = undefined;
    events.length = 0;
    bed?.cluster.faults.clear();
  });

  function sleeper(name: string, app: string): V1Pod {
    return {
      metadata: { name, labels: { app } },
      spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: SLEEPER_IMAGE }] },
    };
  }

  async function watch(app: string): Promise<PodWatcher> {
    const client = KubernetesClient.create({ kubeconfig: bed.kubeconfig, tokenPath: '' });
    watcher = new PodWatcher({
      client,
      namespace: NAMESPACE,
      labelSelector: `app=${app}`,
      logger: createLogger(false),
      onEvent: (type, pod) => events.push({ type, name: pod.metadata!.name! }),
    });
    await watcher.start();
    return watcher;
  }

  const saw = (type: PodEventType, name: string) => events.some((e) => e.type === type && e.name === name);

  it('resumes from the last resourceVersion after its connection drops, without replaying what it saw', async function () {
    const w = await watch('resume');
    await bed.api.createNamespacedPod({ namespace: NAMESPACE, body: sleeper('resume-a', 'resume') });
    await waitFor(() => saw('ADDED', 'resume-a'), 'resume-a to be seen');
    expect(bed.cluster.faults.dropWatches()).to.be.greaterThan(0);
    await bed.api.createNamespacedPod({ namespace: NAMESPACE, body: sleeper('resume-b', 'resume') });
    await waitFor(() => saw('ADDED', 'resume-b'), 'resume-b to be seen after the drop');
    expect(w.reconnects).to.be.greaterThan(0);
    expect(w.relists).to.equal(0);
    expect(events.filter((e) => e.type === 'ADDED' && e.name === 'resume-a')).to.have.length(1);
    for (const name of ['resume-a', 'resume-b']) await bed.api.deleteNamespacedPod({ namespace: NAMESPACE, name, gracePeriodSeconds: 0 });
    expect(await w.untilEmpty(5000)).to.equal(true);
  });

  it('relists after 410 Gone and reports a pod deleted while it was not watching', async function () {
    const w = await watch('relist');
    await bed.api.createNamespacedPod({ namespace: NAMESPACE, body: sleeper('relist-a', 'relist') });
    await waitFor(() => saw('ADDED', 'relist-a'), 'relist-a to be seen');
    // Keep it away while the pod goes and history is compacted, as during an API server outage.
    const outage = bed.cluster.faults.failRequests({ code: 500, count: 1000, verb: 'watch', resource: 'pods' });
    bed.cluster.faults.dropWatches();
    await bed.api.deleteNamespacedPod({ namespace: NAMESPACE, name: 'relist-a', gracePeriodSeconds: 0 });
    await waitFor(async () => (await bed.api.listNamespacedPod({ namespace: NAMESPACE, labelSelector: 'app=relist' })).items.length === 0, 'relist-a to be gone');
    bed.cluster.compactHistory();
    outage.clear();
    await waitFor(() => saw('DELETED', 'relist-a'), 'the deletion to be reported after the relist', 15_000);
    expect(w.relists).to.be.greaterThan(0);
  });
});

describe('KubernetesBackend watch', function () {
  this.timeout(20_000);
  let bed: TestBed;

  before(async function () {
    bed = await startTestBed();
  });

  after(async function () {
    await bed?.stop();
  });

  /** A backend for `pool` under a new parent pod, with one runner pod that only sleeps. */
  async function bootSleeper(parent: string, pool: string) {
    await bed.createParentPod(parent);
    const exits: [string, string][] = [];
    const backend = new KubernetesBackend(bed.options(parent, { image: SLEEPER_IMAGE }));
    await backend.init({ pool, node: bed.node, logger: createLogger(false), runnerExited: (id, reason) => exits.push([id, reason]) });
    const runner = await backend.boot({ id: `${pool}-1`, env: { FLAME_PARENT: 'unused', FLAME_COOKIE: bed.node.cookie }, shutdownTimeout: 1000 }, new AbortController().signal);
    return { backend, exits, runner };
  }

  it('still reports a runner pod that ends after the watch was dropped', async function () {
    const { backend, exits, runner } = await bootSleeper('watch-parent', 'watched');
    try {
      const pod = /^pod (\S+) \(127\.1\.\d+\.\d+\)$/.exec(runner.description)![1]!;
      expect(bed.cluster.faults.dropWatches()).to.be.greaterThan(0);
      const container = bed.cluster.podProcesses().find((p) => p.name === pod)!;
      process.kill(container.pid, 'SIGKILL');
      await waitFor(() => exits.length > 0, 'the pod exit to be reported', 10_000);
      expect(exits).to.deep.equal([['watched-1', `pod ${pod} failed: Error (exit 137)`]]);
      await backend.shutdown(runner);
    } finally {
      await backend.dispose();
    }
    const left = await bed.api.listNamespacedPod({ namespace: NAMESPACE, labelSelector: 'flame-actors/pool=watched' });
    expect(left.items).to.have.length(0);
  });

  it('reports a runner pod deleted by someone else as soon as the deletion starts', async function () {
    const { backend, exits, runner } = await bootSleeper('evict-parent', 'evicted');
    try {
      const pod = /^pod (\S+) /.exec(runner.description)![1]!;
      await bed.api.deleteNamespacedPod({ namespace: NAMESPACE, name: pod });
      await waitFor(() => exits.length > 0, 'the deletion to be reported', 10_000);
      expect(exits).to.deep.equal([['evicted-1', `pod ${pod} is being deleted`]]);
      await backend.shutdown(runner);
    } finally {
      await backend.dispose();
    }
  });
});
