import { expect } from 'chai';
import { dispatch, query, type Ref } from 'nact';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubernetesBackend } from '../../src/backends/kubernetes/backend.js';
import { moduleRef } from '../../src/flame/fn-ref.js';
import type { Pool } from '../../src/flame/pool.js';
import type { PoolOptions } from '../../src/flame/options.js';
import { BootError, BootTimeoutError, KubernetesError, MissingEnvError, RunnerDownError } from '../../src/errors.js';
import { startPool } from '../helpers/pools.js';
import { nextEvent, settlesWithin, waitFor } from '../helpers/wait.js';
import { waitForPodGone } from '../kube/helpers.js';
import type * as Jobs from '../fixtures/pool-jobs.js';
import { NAMESPACE, podNameOf, RUNNER_IMAGE, runnerPods, SERVICE_ACCOUNT, startTestBed, type TestBed } from './helpers.js';

const JOBS = new URL('../fixtures/pool-jobs.js', import.meta.url);
const markedCounter = moduleRef(JOBS, 'markedCounter');

describe('KubernetesBackend', function () {
  this.timeout(30_000);
  let bed: TestBed;
  let parents = 0;
  let dir: string;

  before(async function () {
    bed = await startTestBed();
    dir = mkdtempSync(join(tmpdir(), 'flame-k8s-'));
  });

  after(async function () {
    await bed?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  afterEach(function () {
    bed?.cluster.faults.clear();
  });

  /** A fresh parent pod per test, so cascades and leftovers never cross tests. */
  async function parentPod(): Promise<string> {
    const name = `shop-web-${++parents}`;
    await bed.createParentPod(name);
    return name;
  }

  async function pool(name: string, extra: Partial<PoolOptions> = {}, backendOptions = {}): Promise<Pool> {
    const podName = await parentPod();
    return startPool({
      name,
      backend: new KubernetesBackend(bed.options(podName, backendOptions)),
      node: bed.node,
      max: 1,
      shutdownTimeout: 1000,
      failsafeTimeout: 3000,
      log: false,
      ...extra,
    });
  }

  describe('running work on runner pods', function () {
    it('runs a call on a runner pod and returns its result', async function () {
      const p = await pool('sum');
      const up = nextEvent<[unknown, number]>(p, 'runnerUp', 20_000);
      expect(await p.call((a: number, b: number) => a + b, [1, 2])).to.equal(3);
      const [, bootMs] = await up;
      const [runner] = p.status().runners;
      expect(runner!.description).to.match(/^pod shop-web-\d+-sum-\w+ \(127\.1\.\d+\.\d+\)$/);
      console.log(`      (runner pod booted and connected in ${Math.round(bootMs)} ms)`);
    });

    it('places an actor on a runner pod', async function () {
      const p = await pool('place');
      const counter = await p.placeChild<Jobs.CounterMsg>(markedCounter, [join(dir, 'counter-stopped'), 40]);
      dispatch(counter, { type: 'inc' });
      dispatch(counter, { type: 'inc' });
      expect(await query(counter, (sender: Ref<number>) => ({ type: 'get' as const, sender }), 5000)).to.equal(42);
    });

    it('builds the runner pod from the parent pod: our labels, owner, Never, POD_* first, its service account and image', async function () {
      const p = await pool('shape');
      const seen = await p.call(() => ({
        mode: process.env.SHOP_MODE,
        greeting: process.env.GREETING,
        port: process.env.FLAME_PORT,
        nodeName: process.env.FLAME_NODE_NAME,
        podName: process.env.POD_NAME,
        podIp: process.env.POD_IP,
      }));
      const [pod] = await runnerPods(bed.api, 'shape');
      const parent = await bed.api.readNamespacedPod({ namespace: NAMESPACE, name: pod!.metadata!.ownerReferences![0]!.name });
      expect(pod!.metadata!.labels).to.deep.equal({
        'flame-actors/pool': 'shape',
        'flame-actors/runner': 'shape-1',
        'flame-actors/parent-uid': parent.metadata!.uid,
      });
      expect(pod!.metadata!.ownerReferences).to.deep.equal([{ apiVersion: 'v1', kind: 'Pod', name: parent.metadata!.name, uid: parent.metadata!.uid, controller: true }]);
      expect(pod!.spec!.automountServiceAccountToken).to.equal(false);
      expect(pod!.metadata!.annotations).to.include({ 'cluster-autoscaler.kubernetes.io/safe-to-evict': 'true' });
      expect(pod!.metadata!.generateName).to.equal(`${parent.metadata!.name}-shape-`);
      const spec = pod!.spec!;
      expect(spec.restartPolicy).to.equal('Never');
      expect(spec.serviceAccountName).to.equal(SERVICE_ACCOUNT);
      expect(spec.terminationGracePeriodSeconds).to.equal(6); // shutdownTimeout 1 s + 5 s
      const runner = spec.containers[0]!;
      expect(runner.name).to.equal('runner');
      expect(runner.image).to.equal(RUNNER_IMAGE);
      expect(runner.resources).to.deep.equal({ requests: { cpu: '100m', memory: '64Mi' } });
      expect(runner.env!.map((e) => e.name)).to.deep.equal(['POD_NAME', 'POD_NAMESPACE', 'POD_IP', 'SHOP_MODE', 'GREETING', 'FLAME_PARENT', 'FLAME_COOKIE']);
      // POD_* first: the inherited GREETING expands both; the parent's own identity is not inherited.
      expect(seen).to.deep.equal({
        mode: 'checkout',
        greeting: `hello from ${pod!.metadata!.name} on ${pod!.status!.podIP}`,
        port: undefined,
        nodeName: undefined,
        podName: pod!.metadata!.name,
        podIp: pod!.status!.podIP,
      });
    });

    it('hands the cookie over in a Secret owned by the parent pod, deleted with the pool', async function () {
      const p = await pool('cookie');
      expect(await p.call(() => process.env.FLAME_COOKIE === undefined)).to.equal(false);
      const [pod] = await runnerPods(bed.api, 'cookie');
      const cookie = pod!.spec!.containers[0]!.env!.find((e) => e.name === 'FLAME_COOKIE')!;
      expect(cookie.value).to.equal(undefined);
      const secretName = cookie.valueFrom!.secretKeyRef!.name!;
      const secret = await bed.api.readNamespacedSecret({ namespace: NAMESPACE, name: secretName });
      expect(Buffer.from(secret.data!.FLAME_COOKIE!, 'base64').toString()).to.equal(bed.node.cookie);
      expect(secret.metadata!.ownerReferences![0]!.kind).to.equal('Pod');
      await p.stop();
      const left = await bed.api.listNamespacedSecret({ namespace: NAMESPACE, labelSelector: 'flame-actors/pool=cookie' });
      expect(left.items).to.have.length(0);
    });

    it('can put the cookie in the pod spec instead (cookie: "env")', async function () {
      const p = await pool('plain-cookie', {}, { cookie: 'env' });
      expect(await p.call(() => 1)).to.equal(1);
      const [pod] = await runnerPods(bed.api, 'plain-cookie');
      expect(pod!.spec!.containers[0]!.env!.find((e) => e.name === 'FLAME_COOKIE')!.value).to.equal(bed.node.cookie);
    });
  });

  describe('runner pod lifecycle', function () {
    it('deletes the pod of a runner stopped for idleness', async function () {
      const p = await pool('idle', { idleShutdownAfter: 300 });
      await p.call(() => 1);
      const name = podNameOf(p.status().runners[0]!.description);
      await waitForPodGone(bed.cluster, NAMESPACE, name, 10_000);
      expect(p.status().runners).to.have.length(0);
    });

    it('leaves no pod, Secret or pod process after pool.stop()', async function () {
      const p = await pool('stop', { max: 2, maxConcurrency: 1 });
      await Promise.all([p.call(() => 1), p.call(() => 2)]);
      expect(await runnerPods(bed.api, 'stop')).to.have.length(2);
      await p.stop();
      expect(await runnerPods(bed.api, 'stop')).to.have.length(0);
      expect(bed.cluster.podProcesses().filter((pp) => pp.name.includes('-stop-'))).to.deep.equal([]);
      const secrets = await bed.api.listNamespacedSecret({ namespace: NAMESPACE, labelSelector: 'flame-actors/pool=stop' });
      expect(secrets.items).to.have.length(0);
    });

    it('reports a runner pod killed mid-call (RunnerDownError) and boots another', async function () {
      const p = await pool('killed', { min: 1 });
      const first = podNameOf(p.status().runners[0]!.description);
      const call = p.call(() => new Promise(() => {}), [], { timeout: 20_000 }).then(() => undefined, (e: unknown) => e);
      await waitFor(() => p.status().runners[0]?.load === 1, 'the call to start');
      const replaced = nextEvent<[{ description?: string }]>(p, 'runnerUp', 20_000);
      await bed.cluster.faults.killNode(NAMESPACE, first);
      expect(await call).to.be.instanceOf(RunnerDownError);
      const [next] = await replaced;
      expect(podNameOf(next.description)).to.not.equal(first);
      expect(await p.call(() => 'still serving')).to.equal('still serving');
    });

    it('deletes runner pods with their parent pod (owner references)', async function () {
      const podName = await parentPod();
      const p = await startPool({
        name: 'orphans', backend: new KubernetesBackend(bed.options(podName)), node: bed.node, max: 1, shutdownTimeout: 1000, log: false,
      });
      await p.call(() => 1);
      const runner = podNameOf(p.status().runners[0]!.description);
      const down = nextEvent<[unknown, string]>(p, 'runnerDown', 15_000);
      await bed.api.deleteNamespacedPod({ namespace: NAMESPACE, name: podName });
      await waitForPodGone(bed.cluster, NAMESPACE, runner, 15_000);
      await down;
    });
  });

  describe('failed boots', function () {
    it('fails the boot on an image that still cannot be pulled after imagePullTimeout, long before bootTimeout, and deletes the pod', async function () {
      bed.cluster.faults.failImagePull({ namespace: NAMESPACE, labelSelector: 'flame-actors/pool=pull' }, { times: Infinity });
      const podName = await parentPod();
      const { error, ms } = await settlesWithin(
        startPool({ name: 'pull', backend: new KubernetesBackend(bed.options(podName, { imagePullTimeout: 1000 })), node: bed.node, min: 1, max: 1, bootTimeout: 20_000, log: false }),
        15_000,
        'Pool.start',
      );
      expect(error).to.be.instanceOf(BootError);
      expect((error as Error).message).to.match(/pod shop-web-\d+-pull-\w+ cannot start: its image could not be pulled .*(ErrImagePull|ImagePullBackOff)/);
      expect(ms).to.be.within(1000, 10_000);
      expect(await runnerPods(bed.api, 'pull')).to.have.length(0);
    });

    it('fails the boot with the exit code of a runner that crashes at start', async function () {
      bed.cluster.faults.crashOnStart({ namespace: NAMESPACE, labelSelector: 'flame-actors/pool=crash' }, { exitCode: 42, times: Infinity });
      const podName = await parentPod();
      const error = await startPool({ name: 'crash', backend: new KubernetesBackend(bed.options(podName)), node: bed.node, min: 1, max: 1, log: false })
        .then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(BootError);
      expect((error as Error).message).to.match(/pod shop-web-\d+-crash-\w+ failed: Error \(exit 42\)/);
      expect(await runnerPods(bed.api, 'crash')).to.have.length(0);
    });

    it('fails an unschedulable pod at once when waitWhenUnschedulable is false, naming Unschedulable', async function () {
      bed.cluster.faults.keepPending({ namespace: NAMESPACE, labelSelector: 'flame-actors/pool=unschedulable' }, { times: Infinity });
      const podName = await parentPod();
      const backend = new KubernetesBackend(bed.options(podName, { waitWhenUnschedulable: false }));
      const error = await startPool({ name: 'unschedulable', backend, node: bed.node, min: 1, max: 1, log: false }).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(BootError);
      expect((error as Error).message).to.match(/cannot start: Unschedulable/);
      expect(await runnerPods(bed.api, 'unschedulable')).to.have.length(0);
    });

    it('waits by default on an Unschedulable runner pod and boots it once capacity arrives, within the deadline', async function () {
      const fault = bed.cluster.faults.keepPending({ namespace: NAMESPACE, labelSelector: 'flame-actors/pool=autoscaled' }, { times: Infinity });
      const podName = await parentPod();
      const starting = startPool({ name: 'autoscaled', backend: new KubernetesBackend(bed.options(podName)), node: bed.node, min: 1, max: 1, bootTimeout: 20_000, log: false });
      starting.catch(() => {});
      await waitFor(async () => {
        const [pod] = await runnerPods(bed.api, 'autoscaled');
        return pod?.status?.conditions?.some((c) => c.reason === 'Unschedulable') === true;
      }, 'the runner pod to be Unschedulable', 10_000, 50);
      fault.clear(); // the autoscaler added a node
      const p = (await settlesWithin(starting, 15_000, 'Pool.start')).value!;
      expect(await p.call(() => 'scheduled at last')).to.equal('scheduled at last');
    });

    it('gives up on a pod still Pending at the boot deadline (BootTimeoutError saying what it waited for) and deletes it', async function () {
      bed.cluster.faults.keepPending({ namespace: NAMESPACE, labelSelector: 'flame-actors/pool=pending' }, { times: Infinity });
      const podName = await parentPod();
      const backend = new KubernetesBackend(bed.options(podName));
      const { error, ms } = await settlesWithin(
        startPool({ name: 'pending', backend, node: bed.node, min: 1, max: 1, bootTimeout: 1500, log: false }),
        10_000,
        'Pool.start',
      );
      expect(error).to.be.instanceOf(BootTimeoutError);
      expect((error as Error).message).to.match(/within bootTimeout \(1500 ms\) \(pod shop-web-\d+-pending-\w+ was waiting for the scheduler: Unschedulable/);
      expect(ms).to.be.within(1400, 6000);
      expect(await runnerPods(bed.api, 'pending')).to.have.length(0);
    });

    it('a Kubernetes pool waits 5 minutes for a boot unless told otherwise', function () {
      expect(new KubernetesBackend(bed.options('any')).defaultBootTimeout).to.equal(300_000);
    });

    it('asks for encrypted links to its runner pods unless encryptLinks is false', function () {
      expect(new KubernetesBackend(bed.options('any')).encryptLinks).to.equal(true);
      expect(new KubernetesBackend(bed.options('any', { encryptLinks: false })).encryptLinks).to.equal(false);
    });

    it('refuses to start without "create" on pods, naming the verb (KubernetesError)', async function () {
      const kubeconfig = bed.kubeconfigWith('no-create', [
        { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'delete'] },
        { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'delete'] },
      ]);
      const podName = await parentPod();
      const error = await startPool({ name: 'forbidden', backend: new KubernetesBackend(bed.options(podName, { kubeconfig })), node: bed.node, max: 1, log: false })
        .then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(KubernetesError);
      expect((error as KubernetesError).message).to.match(/cannot create pods in namespace "shop": grant "create" on "pods"/);
      expect(error as KubernetesError).to.include({ statusCode: 403, reason: 'Forbidden', refusal: 'rbac', verb: 'create', resource: 'pods' });
    });

    it('retries a create throttled with 429 Too Many Requests', async function () {
      const p = await pool('throttled');
      bed.cluster.faults.failRequests({ code: 429, count: 2, verb: 'create', resource: 'pods', retryAfterSeconds: 0 });
      expect(await p.call(() => 'booted anyway')).to.equal('booted anyway');
    });
  });

  describe('configuration', function () {
    it('needs POD_NAME (MissingEnvError showing the downward-API snippet)', function () {
      const saved = process.env.POD_NAME;
      delete process.env.POD_NAME;
      try {
        expect(() => new KubernetesBackend({ kubeconfig: bed.kubeconfig, namespace: NAMESPACE }))
          .to.throw(MissingEnvError, /POD_NAME is not set[\s\S]*fieldPath: metadata\.name/);
      } finally {
        if (saved !== undefined) process.env.POD_NAME = saved;
      }
    });

    it('refuses a parent pod that does not exist, saying what POD_NAME must be', async function () {
      const error = await startPool({ name: 'nobody', backend: new KubernetesBackend(bed.options('not-there')), node: bed.node, max: 1, log: false })
        .then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(KubernetesError);
      expect((error as Error).message).to.match(/parent pod "not-there" not found in namespace "shop"/);
    });
  });
});
