import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { Log, type CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { EXTERNAL_POD_ANNOTATION, POD_IP_ANNOTATION, SERVICE_ACCOUNT_MOUNT, startEmulatedCluster, type EmulatedCluster } from '../../src/testing/index.js';
import { coreApi, eventually, isAlive, kubeConfigFor, nodePod, POD_MARKER, sleeperPod, waitForPod, waitForPodGone, watchPodsUntil, createNamespaces } from './helpers.js';

function terminatedOf(pod: V1Pod) {
  return pod.status?.containerStatuses?.[0]?.state?.terminated;
}

async function logsOf(api: CoreV1Api, namespace: string, name: string): Promise<string> {
  return api.readNamespacedPodLog({ namespace, name });
}

/** The pid the pod's process reports on its first output line. */
async function pidOf(cluster: EmulatedCluster, namespace: string, name: string): Promise<number> {
  const entry = cluster.podProcesses().find((p) => p.namespace === namespace && p.name === name);
  if (!entry) throw new Error(`no process for ${namespace}/${name}`);
  return entry.pid;
}

describe('Emulated kubelet', function () {
  let cluster: EmulatedCluster;
  let api: CoreV1Api;

  before(async function () {
    cluster = await startEmulatedCluster({
      restartBackoffMs: { initial: 100, max: 400 },
      images: { 'flame/echo:1': { command: ['node', '-e', 'console.log("from image", process.cwd(), process.argv.slice(1).join(" "))'], args: ['default-arg', POD_MARKER], workingDir: '/tmp' } },
    });
    api = coreApi(cluster);
    await createNamespaces(cluster, ['cascade', 'dangling', 'env', 'external', 'foreground', 'grace', 'group', 'images', 'in-cluster', 'logs', 'orphan', 'phases', 'restarts', 'shorter']);
  });

  after(async function () {
    await cluster?.stop();
  });

  it('runs the pod process on its own 127.1.x.y address with env, fieldRef and $(VAR) resolved', async function () {
    const namespace = 'env';
    cluster.createServiceAccount(namespace, 'runner-sa');
    const script = `const e = process.env; console.log(JSON.stringify({ name: e.POD_NAME, ns: e.POD_NAMESPACE, ip: e.POD_IP, sa: e.SA, node: e.RELEASE_NODE, literal: e.LITERAL, unknown: e.UNKNOWN, host: e.KUBERNETES_SERVICE_HOST, port: e.KUBERNETES_SERVICE_PORT, hostname: e.HOSTNAME }))`;
    await api.createNamespacedPod({
      namespace,
      body: nodePod('env-pod', script, {
        spec: { serviceAccountName: 'runner-sa' },
        container: {
          env: [
            { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
            { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } },
            { name: 'POD_IP', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'status.podIP' } } },
            { name: 'SA', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
            { name: 'RELEASE_DISTRIBUTION', value: 'name' },
            { name: 'RELEASE_NODE', value: 'my_app@$(POD_IP)' },
            { name: 'LITERAL', value: '$$(POD_IP)' },
            { name: 'UNKNOWN', value: '$(NOT_DEFINED)-x' },
          ],
        },
      }),
    });
    const done = await waitForPod(cluster, namespace, 'env-pod', (p) => p.status?.phase === 'Succeeded');
    const seen = JSON.parse((await logsOf(api, namespace, 'env-pod')).trim()) as Record<string, string>;
    const ip = done.status!.podIP!;
    expect(ip).to.match(/^127\.1\.\d+\.\d+$/);
    expect(seen).to.deep.equal({
      name: 'env-pod',
      ns: namespace,
      ip,
      sa: 'runner-sa',
      node: `my_app@${ip}`,
      literal: '$(POD_IP)',
      unknown: '$(NOT_DEFINED)-x',
      host: '127.0.0.1',
      port: String(cluster.port),
      hostname: 'env-pod',
    });
  });

  it('runs the image default command in its working directory when the pod gives none', async function () {
    const namespace = 'images';
    await api.createNamespacedPod({
      namespace,
      body: { metadata: { name: 'from-image' }, spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'flame/echo:1' }] } },
    });
    await waitForPod(cluster, namespace, 'from-image', (p) => p.status?.phase === 'Succeeded');
    expect((await logsOf(api, namespace, 'from-image')).trim()).to.equal(`from image /tmp default-arg ${POD_MARKER}`);
  });

  it('mounts the service-account token, ca.crt and namespace where in-cluster client-node finds them', async function () {
    this.timeout(30_000);
    const namespace = 'in-cluster';
    cluster.createServiceAccount(namespace, 'lister', [{ verbs: ['list'], resources: ['pods'] }]);
    const script = [
      `import { readFileSync } from 'node:fs';`,
      `import { KubeConfig, CoreV1Api } from '@kubernetes/client-node';`,
      `const dir = process.env.FLAME_SERVICEACCOUNT_DIR;`,
      `const kc = new KubeConfig();`,
      `if (dir === '${SERVICE_ACCOUNT_MOUNT}') kc.loadFromCluster(); else kc.loadFromClusterAndUser({ name: 'c', server: 'https://' + process.env.KUBERNETES_SERVICE_HOST + ':' + process.env.KUBERNETES_SERVICE_PORT, caFile: dir + '/ca.crt' }, { name: 'u', authProvider: { name: 'tokenFile', config: { tokenFile: dir + '/token' } } });`,
      `const ns = readFileSync(dir + '/namespace', 'utf8');`,
      `const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: ns });`,
      `console.log(JSON.stringify({ dir, ns, pods: pods.items.map((p) => p.metadata.name), caLooksRight: readFileSync(dir + '/ca.crt', 'utf8').includes('BEGIN CERTIFICATE') }));`,
    ].join('\n');
    await api.createNamespacedPod({
      namespace,
      body: nodePod('in-cluster', script, {
        spec: { serviceAccountName: 'lister' },
        container: { command: ['node', '--input-type=module', '-e', script, POD_MARKER], workingDir: process.cwd() },
      }),
    });
    const done = await waitForPod(cluster, namespace, 'in-cluster', (p) => ['Succeeded', 'Failed'].includes(p.status?.phase ?? ''), 25_000);
    const output = await logsOf(api, namespace, 'in-cluster');
    expect(done.status!.phase, output).to.equal('Succeeded');
    const seen = JSON.parse(output.trim().split('\n').pop()!) as { dir: string; ns: string; pods: string[]; caLooksRight: boolean };
    expect(seen.ns).to.equal(namespace);
    expect(seen.pods).to.deep.equal(['in-cluster']);
    expect(seen.caLooksRight).to.equal(true);
    expect(seen.dir).to.equal(cluster.mountsServiceAccount ? SERVICE_ACCOUNT_MOUNT : seen.dir);
  });

  it('falls back to a per-pod folder named by FLAME_SERVICEACCOUNT_DIR when told not to mount', async function () {
    const folder = await startEmulatedCluster({ serviceAccountMode: 'folder' });
    try {
      const folderApi = coreApi(folder);
      await folderApi.createNamespacedPod({
        namespace: 'default',
        body: nodePod('sa-folder', `const fs = require('fs'); const d = process.env.FLAME_SERVICEACCOUNT_DIR; console.log(d, fs.readFileSync(d + '/namespace', 'utf8'), fs.readFileSync(d + '/token', 'utf8').length > 10)`),
      });
      await waitForPod(folder, 'default', 'sa-folder', (p) => p.status?.phase === 'Succeeded');
      const [dir, ns, hasToken] = (await folderApi.readNamespacedPodLog({ namespace: 'default', name: 'sa-folder' })).trim().split(' ');
      expect(folder.mountsServiceAccount).to.equal(false);
      expect(dir).to.not.equal(SERVICE_ACCOUNT_MOUNT);
      expect(dir).to.match(/serviceaccount$/);
      expect(ns).to.equal('default');
      expect(hasToken).to.equal('true');
    } finally {
      await folder.stop();
    }
  });

  it('reports Succeeded and Failed with exit code and reason, honouring restartPolicy Never', async function () {
    const namespace = 'phases';
    await api.createNamespacedPod({ namespace, body: nodePod('ok', 'console.log("bye")') });
    await api.createNamespacedPod({ namespace, body: nodePod('fails', 'console.error("boom"); process.exit(3)') });
    const ok = await waitForPod(cluster, namespace, 'ok', (p) => p.status?.phase === 'Succeeded');
    const fails = await waitForPod(cluster, namespace, 'fails', (p) => p.status?.phase === 'Failed');
    expect(terminatedOf(ok)).to.deep.include({ exitCode: 0, reason: 'Completed' });
    expect(terminatedOf(fails)).to.deep.include({ exitCode: 3, reason: 'Error' });
    expect(fails.status!.containerStatuses![0]!.restartCount).to.equal(0);
    expect(await logsOf(api, namespace, 'fails')).to.equal('boom\n');
  });

  it('restarts a container that exits under restartPolicy Always, counting restarts', async function () {
    const namespace = 'restarts';
    await api.createNamespacedPod({ namespace, body: nodePod('flaky', 'console.log("run"); process.exit(1)', { spec: { restartPolicy: 'Always' } }) });
    const pod = await waitForPod(cluster, namespace, 'flaky', (p) => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 2);
    expect(pod.status!.containerStatuses![0]!.lastState!.terminated).to.deep.include({ exitCode: 1, reason: 'Error' });
    const waiting = await waitForPod(cluster, namespace, 'flaky', (p) => p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff');
    expect(waiting.status!.containerStatuses![0]!.state!.waiting!.message).to.match(/^back-off [\d.]+s restarting failed container=main pod=flaky_restarts\(/);
    const previous = await api.readNamespacedPodLog({ namespace, name: 'flaky', previous: true });
    expect(previous).to.equal('run\n');
    await api.deleteNamespacedPod({ namespace, name: 'flaky', gracePeriodSeconds: 0 });
  });

  it('keeps stdout and stderr and serves them as logs, with tailLines', async function () {
    const namespace = 'logs';
    await api.createNamespacedPod({ namespace, body: nodePod('chatty', 'for (let i = 1; i <= 5; i++) console.log("line " + i); console.error("to stderr")') });
    await waitForPod(cluster, namespace, 'chatty', (p) => p.status?.phase === 'Succeeded');
    await eventually(async () => (await logsOf(api, namespace, 'chatty')).includes('to stderr'), 'stderr in the logs');
    expect(await logsOf(api, namespace, 'chatty')).to.equal('line 1\nline 2\nline 3\nline 4\nline 5\nto stderr\n');
    expect(await api.readNamespacedPodLog({ namespace, name: 'chatty', tailLines: 2 })).to.equal('line 5\nto stderr\n');
  });

  it('stops a pod with SIGTERM, then SIGKILL after the grace period, then removes it', async function () {
    const namespace = 'grace';
    await api.createNamespacedPod({
      namespace,
      body: nodePod('stubborn', `process.on('SIGTERM', () => console.log('ignoring SIGTERM')); console.log('up'); setInterval(() => {}, 1000)`, {
        spec: { terminationGracePeriodSeconds: 1 },
      }),
    });
    await waitForPod(cluster, namespace, 'stubborn', (p) => p.status?.phase === 'Running');
    await eventually(async () => (await logsOf(api, namespace, 'stubborn')).includes('up'), 'the pod to have installed its SIGTERM handler');
    const pid = await pidOf(cluster, namespace, 'stubborn');
    // Followed from before the delete to the container's end: what the process printed in its
    // grace period is read whatever the machine's load (a read after the pod is gone would fail).
    let output = '';
    const followed = new PassThrough();
    followed.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const outputEnded = new Promise<void>((resolve) => followed.once('end', resolve));
    const following = await new Log(kubeConfigFor(cluster)).log(namespace, 'stubborn', 'main', followed, { follow: true });
    try {
      const list = await api.listNamespacedPod({ namespace });
      const started = Date.now();
      const seen = watchPodsUntil(cluster, namespace, (events) => events.some((e) => e.type === 'DELETED'), { resourceVersion: list.metadata!.resourceVersion! });
      await api.deleteNamespacedPod({ namespace, name: 'stubborn' });
      const events = await seen;
      const elapsed = Date.now() - started;
      expect(elapsed).to.be.within(900, 6000);
      expect(isAlive(pid)).to.equal(false);
      const last = events.filter((e) => e.type === 'MODIFIED').pop()!.object;
      expect(terminatedOf(last)).to.deep.include({ exitCode: 137, signal: 9 });
      await outputEnded;
      expect(output).to.equal('up\nignoring SIGTERM\n');
    } finally {
      following.abort();
    }
  });

  it('shortens the wait when a second delete asks for a shorter grace period', async function () {
    const namespace = 'shorter';
    await api.createNamespacedPod({
      namespace,
      body: nodePod('slow', `process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1000)`, { spec: { terminationGracePeriodSeconds: 30 } }),
    });
    await waitForPod(cluster, namespace, 'slow', (p) => p.status?.phase === 'Running');
    await eventually(async () => (await logsOf(api, namespace, 'slow')).includes('up'), 'the pod to have installed its SIGTERM handler');
    await api.deleteNamespacedPod({ namespace, name: 'slow' });
    const started = Date.now();
    await api.deleteNamespacedPod({ namespace, name: 'slow', gracePeriodSeconds: 0 });
    await waitForPodGone(cluster, namespace, 'slow');
    expect(Date.now() - started).to.be.below(5000);
  });

  it('kills what the pod process started along with it', async function () {
    const namespace = 'group';
    const script = `const c = require('child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '${POD_MARKER}'], { stdio: 'ignore' }); console.log(c.pid); setInterval(() => {}, 1000)`;
    await api.createNamespacedPod({ namespace, body: nodePod('parent', script) });
    await waitForPod(cluster, namespace, 'parent', (p) => p.status?.phase === 'Running');
    await eventually(async () => /^\d+\n/.test(await logsOf(api, namespace, 'parent')), 'the child pid in the logs');
    const childPid = Number((await logsOf(api, namespace, 'parent')).trim());
    expect(isAlive(childPid)).to.equal(true);
    await api.deleteNamespacedPod({ namespace, name: 'parent', gracePeriodSeconds: 0 });
    // Listed until its whole group is gone: once the pod is not, nothing of it runs any more.
    await eventually(() => cluster.podProcesses().every((p) => p.name !== 'parent' || p.namespace !== namespace), 'the pod processes to be gone');
    expect(isAlive(childPid)).to.equal(false);
  });

  describe('garbage collection by ownerReferences', function () {
    async function ownedPair(namespace: string, owner: string, dependent: string): Promise<{ ownerUid: string }> {
      const parent = await api.createNamespacedPod({ namespace, body: sleeperPod(owner) });
      const ownerReferences = [{ apiVersion: 'v1', kind: 'Pod', name: owner, uid: parent.metadata!.uid!, controller: true, blockOwnerDeletion: true }];
      await api.createNamespacedPod({ namespace, body: sleeperPod(dependent, { metadata: { ownerReferences } }) });
      await api.createNamespacedSecret({ namespace, body: { metadata: { name: `${dependent}-cookie`, ownerReferences }, stringData: { cookie: 'c' } } });
      await waitForPod(cluster, namespace, dependent, (p) => p.status?.phase === 'Running');
      return { ownerUid: parent.metadata!.uid! };
    }

    it('deletes the pods and secrets a deleted pod owns, killing their processes', async function () {
      const namespace = 'cascade';
      await ownedPair(namespace, 'parent', 'runner');
      const runnerPid = await pidOf(cluster, namespace, 'runner');
      await api.deleteNamespacedPod({ namespace, name: 'parent' });
      await waitForPodGone(cluster, namespace, 'parent');
      await waitForPodGone(cluster, namespace, 'runner');
      await eventually(() => !isAlive(runnerPid), 'the runner process to die');
      const secrets = await api.listNamespacedSecret({ namespace });
      expect(secrets.items.map((s) => s.metadata!.name)).to.not.include('runner-cookie');
    });

    it('deletes dependents first with propagationPolicy Foreground', async function () {
      const namespace = 'foreground';
      await ownedPair(namespace, 'parent', 'runner');
      const deleting = await api.deleteNamespacedPod({ namespace, name: 'parent', propagationPolicy: 'Foreground' });
      expect(deleting.metadata!.finalizers).to.include('foregroundDeletion');
      await waitForPodGone(cluster, namespace, 'runner');
      await waitForPodGone(cluster, namespace, 'parent');
    });

    it('keeps dependents, without the owner reference, with propagationPolicy Orphan', async function () {
      const namespace = 'orphan';
      await ownedPair(namespace, 'parent', 'runner');
      await api.deleteNamespacedPod({ namespace, name: 'parent', propagationPolicy: 'Orphan', gracePeriodSeconds: 0 });
      await waitForPodGone(cluster, namespace, 'parent');
      const runner = await api.readNamespacedPod({ namespace, name: 'runner' });
      expect(runner.metadata!.ownerReferences ?? []).to.have.length(0);
      await api.deleteNamespacedPod({ namespace, name: 'runner', gracePeriodSeconds: 0 });
    });

    it('deletes an object created with an owner that does not exist', async function () {
      const namespace = 'dangling';
      const ownerReferences = [{ apiVersion: 'v1', kind: 'Pod', name: 'ghost', uid: '00000000-0000-0000-0000-000000000000' }];
      await api.createNamespacedPod({ namespace, body: sleeperPod('stray', { metadata: { ownerReferences } }) });
      await waitForPodGone(cluster, namespace, 'stray');
    });
  });

  it('reports an external pod Running without starting a process, for a test process to stand in for', async function () {
    const namespace = 'external';
    const parent = await api.createNamespacedPod({
      namespace,
      body: sleeperPod('app', { metadata: { annotations: { [EXTERNAL_POD_ANNOTATION]: 'true', [POD_IP_ANNOTATION]: '127.0.0.1' } } }),
    });
    const running = await waitForPod(cluster, namespace, 'app', (p) => p.status?.phase === 'Running');
    expect(running.status!.podIP).to.equal('127.0.0.1');
    expect(cluster.podProcesses().some((p) => p.name === 'app')).to.equal(false);
    const ownerReferences = [{ apiVersion: 'v1', kind: 'Pod', name: 'app', uid: parent.metadata!.uid! }];
    await api.createNamespacedPod({ namespace, body: sleeperPod('runner', { metadata: { ownerReferences } }) });
    await waitForPod(cluster, namespace, 'runner', (p) => p.status?.phase === 'Running');
    await api.deleteNamespacedPod({ namespace, name: 'app' });
    await waitForPodGone(cluster, namespace, 'app');
    await waitForPodGone(cluster, namespace, 'runner');
  });

  it('kills every pod process, and what they started, before stop() resolves', async function () {
    const other = await startEmulatedCluster();
    let stopped = false;
    try {
      const otherApi = coreApi(other);
      const script = `const c = require('child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '${POD_MARKER}'], { stdio: 'ignore' }); console.log(c.pid); setInterval(() => {}, 1000)`;
      for (const name of ['a', 'b']) await otherApi.createNamespacedPod({ namespace: 'default', body: nodePod(name, script, { spec: { restartPolicy: 'Always' } }) });
      for (const name of ['a', 'b']) await waitForPod(other, 'default', name, (p) => p.status?.phase === 'Running');
      const pids = other.podProcesses().map((p) => p.pid);
      expect(pids).to.have.length(2);
      const children: number[] = [];
      for (const name of ['a', 'b']) {
        await eventually(async () => /^\d+\n/.test(await otherApi.readNamespacedPodLog({ namespace: 'default', name })), `the child pid of ${name}`);
        children.push(Number((await otherApi.readNamespacedPodLog({ namespace: 'default', name })).trim()));
      }
      stopped = true;
      await other.stop();
      expect([...pids, ...children].filter((pid) => isAlive(pid))).to.deep.equal([]);
    } finally {
      if (!stopped) await other.stop();
    }
  });
});
