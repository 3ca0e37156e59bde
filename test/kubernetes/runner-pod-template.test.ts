import { expect } from 'chai';
import type { V1Pod } from '@kubernetes/client-node';
import { resolveKubernetesOptions, type KubernetesBackendOptions } from '../../src/backends/kubernetes/options.js';
import { RunnerPodTemplate } from '../../src/backends/kubernetes/runner-pod-template.js';
import { runnerPodState } from '../../src/backends/kubernetes/pod-state.js';
import { InvalidOptionError, MissingEnvError } from '../../src/errors.js';
import type { RunnerSpec } from '../../src/flame/backend.js';

const PARENT: V1Pod = {
  metadata: { name: 'shop-7d9c-x2x', namespace: 'shop', uid: '0b9c2a6e-1111-4a2b-9c3d-000000000001', labels: { app: 'shop', 'pod-template-hash': '7d9c' } },
  spec: {
    serviceAccountName: 'shop',
    imagePullSecrets: [{ name: 'registry' }],
    containers: [
      { name: 'proxy', image: 'envoy:1' },
      {
        name: 'app',
        image: 'shop:42',
        command: ['node', 'server.js'],
        env: [
          { name: 'RELEASE_NODE', value: 'shop@$(POD_IP)' },
          { name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'db', key: 'url' } } },
          { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'FLAME_PORT', value: '4000' },
          { name: 'FLAME_COOKIE', value: 'the-parents' },
        ],
        envFrom: [{ configMapRef: { name: 'shop-config' } }],
        resources: { limits: { memory: '1Gi' } },
      },
    ],
  },
};
const SPEC: RunnerSpec = { id: 'jobs-3', env: { FLAME_PARENT: 'token', FLAME_COOKIE: 'secret-cookie' }, shutdownTimeout: 30_000 };

function template(options: KubernetesBackendOptions = {}, parent: V1Pod = PARENT): RunnerPodTemplate {
  const resolved = resolveKubernetesOptions({ podName: 'shop-7d9c-x2x', namespace: 'shop', containerName: 'app', ...options }, {});
  return RunnerPodTemplate.fromParent(parent, 'jobs', resolved);
}

const names = (pod: V1Pod) => pod.spec!.containers[0]!.env!.map((e) => e.name);

describe('RunnerPodTemplate', function () {
  it('inherits the app container (not the first) and forces what makes it a runner pod', function () {
    const pod = template().podFor(SPEC);
    expect(pod.metadata).to.deep.equal({
      generateName: 'shop-7d9c-x2x-jobs-',
      namespace: 'shop',
      labels: { 'flame-actors/pool': 'jobs', 'flame-actors/runner': 'jobs-3', 'flame-actors/parent-uid': PARENT.metadata!.uid },
      annotations: { 'cluster-autoscaler.kubernetes.io/safe-to-evict': 'true', 'flame-actors/parent-pod': 'shop-7d9c-x2x' },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'shop-7d9c-x2x', uid: PARENT.metadata!.uid, controller: true }],
    });
    const { containers, ...spec } = pod.spec!;
    expect(spec).to.deep.equal({
      restartPolicy: 'Never', terminationGracePeriodSeconds: 35, serviceAccountName: 'shop', imagePullSecrets: [{ name: 'registry' }], automountServiceAccountToken: false,
    });
    expect(containers).to.have.length(1);
    expect(containers[0]).to.deep.include({ name: 'runner', image: 'shop:42', command: ['node', 'server.js'], resources: { limits: { memory: '1Gi' } } });
    expect(containers[0]!.envFrom).to.deep.equal([{ configMapRef: { name: 'shop-config' } }]);
  });

  it('puts POD_* first, drops the parent identity, and appends FLAME_* last', function () {
    const pod = template().podFor(SPEC);
    expect(names(pod)).to.deep.equal(['POD_NAME', 'POD_NAMESPACE', 'POD_IP', 'DATABASE_URL', 'FLAME_PARENT', 'FLAME_COOKIE']);
    expect(pod.spec!.containers[0]!.env!.find((e) => e.name === 'FLAME_COOKIE')!.value).to.equal('secret-cookie');
  });

  it('references the cookie Secret instead of the value when there is one', function () {
    const t = template();
    const env = t.podFor(SPEC, t.cookieSecretName).spec!.containers[0]!.env!;
    expect(env.find((e) => e.name === 'FLAME_COOKIE')).to.deep.equal({
      name: 'FLAME_COOKIE', valueFrom: { secretKeyRef: { name: 'shop-7d9c-x2x-jobs-flame-cookie', key: 'FLAME_COOKIE' } },
    });
    expect(t.cookieSecret('c').metadata!.ownerReferences![0]!.uid).to.equal(PARENT.metadata!.uid);
  });

  it('applies a podTemplate, then the image/resources/env options; FLAME_* and POD_* cannot be overridden', function () {
    const pod = template({
      image: 'shop:43',
      env: { MODE: 'runner', FLAME_PARENT: 'nope', DATABASE_URL: 'postgres://replica' },
      podTemplate: {
        metadata: { labels: { team: 'checkout', 'flame-actors/pool': 'spoofed' }, annotations: { note: 'x' }, name: 'ignored' },
        spec: {
          nodeSelector: { pool: 'burst' },
          terminationGracePeriodSeconds: 120,
          containers: [
            { name: 'log-shipper', image: 'fluent-bit:3' },
            { name: 'runner', resources: { requests: { cpu: '2' } }, env: [{ name: 'POD_NAME', value: 'spoofed' }, { name: 'WORKERS', value: '4' }] },
          ],
        },
      },
    }).podFor(SPEC);
    expect(pod.metadata!.labels).to.deep.equal({
      team: 'checkout', 'flame-actors/pool': 'jobs', 'flame-actors/runner': 'jobs-3', 'flame-actors/parent-uid': PARENT.metadata!.uid,
    });
    expect(pod.metadata!.annotations).to.deep.equal({ 'cluster-autoscaler.kubernetes.io/safe-to-evict': 'true', note: 'x', 'flame-actors/parent-pod': 'shop-7d9c-x2x' });
    expect(pod.spec!.nodeSelector).to.deep.equal({ pool: 'burst' });
    expect(pod.spec!.terminationGracePeriodSeconds).to.equal(120);
    expect(pod.spec!.containers.map((c) => c.name)).to.deep.equal(['runner', 'log-shipper']);
    const runner = pod.spec!.containers[0]!;
    expect(runner.image).to.equal('shop:43');
    expect(runner.resources).to.deep.equal({ requests: { cpu: '2' } });
    expect(names(pod)).to.deep.equal(['POD_NAME', 'POD_NAMESPACE', 'POD_IP', 'WORKERS', 'MODE', 'DATABASE_URL', 'FLAME_PARENT', 'FLAME_COOKIE']);
    expect(runner.env!.find((e) => e.name === 'POD_NAME')!.valueFrom).to.exist;
    expect(runner.env!.find((e) => e.name === 'FLAME_PARENT')!.value).to.equal('token');
    expect(runner.env!.find((e) => e.name === 'DATABASE_URL')!.value).to.equal('postgres://replica');
  });

  it('calls a podTemplate function with the parent pod and its app container', function () {
    const pod = template({
      podTemplate: (parent, app) => ({ spec: { containers: [{ ...app, name: 'worker', args: ['--runner'] }], priorityClassName: `${parent.metadata!.name}-low` } }),
      omitOwnerReference: true,
    }).podFor(SPEC);
    expect(pod.metadata!.ownerReferences).to.equal(undefined);
    expect(pod.spec!.priorityClassName).to.equal('shop-7d9c-x2x-low');
    expect(pod.spec!.containers).to.have.length(1);
    expect(pod.spec!.containers[0]).to.deep.include({ name: 'runner', image: 'shop:42', args: ['--runner'] });
  });

  it('refuses, once, a template that builds an invalid pod or a container that is not there', function () {
    expect(() => template({ podTemplate: { spec: { containers: [{ name: 'runner', image: 7 as unknown as string }] } } }))
      .to.throw(InvalidOptionError, /runner pod built from the parent pod and the options is invalid: \/spec\/containers\/0\/image must be string/);
    expect(() => template({ containerName: 'web' })).to.throw(InvalidOptionError, /"containerName" must name a container of pod "shop-7d9c-x2x": one of "proxy", "app"/);
    expect(() => RunnerPodTemplate.fromParent(PARENT, 'p'.repeat(53), resolveKubernetesOptions({ podName: 'a', namespace: 'b' }, {})))
      .to.throw(InvalidOptionError, /at most 52/);
  });
});

describe('KubernetesBackend options', function () {
  it('reads POD_NAME and POD_NAMESPACE, options first', function () {
    expect(resolveKubernetesOptions({}, { POD_NAME: 'a', POD_NAMESPACE: 'b' })).to.include({ podName: 'a', namespace: 'b', cookie: 'secret' });
    expect(resolveKubernetesOptions({ podName: 'c', namespace: 'd' }, { POD_NAME: 'a', POD_NAMESPACE: 'b' })).to.include({ podName: 'c', namespace: 'd' });
  });

  it('names the missing variable and shows the downward-API snippet', function () {
    expect(() => resolveKubernetesOptions({ tokenPath: '/nonexistent' }, { POD_NAME: 'a' }))
      .to.throw(MissingEnvError, /POD_NAMESPACE is not set[\s\S]*fieldPath: metadata\.namespace/);
  });

  it('names the option and what it accepts', function () {
    const env = { POD_NAME: 'a', POD_NAMESPACE: 'b' };
    expect(() => resolveKubernetesOptions({ log: 'loud' as 'info' }, env)).to.throw(InvalidOptionError, /option "log" must be false or one of "error", "warn", "info", "debug"/);
    expect(() => resolveKubernetesOptions({ cookie: 'file' as 'env' }, env)).to.throw(InvalidOptionError, /option "cookie" must be one of "secret", "env"/);
    expect(() => resolveKubernetesOptions({ env: { A: 1 as unknown as string } }, env)).to.throw(InvalidOptionError, /option "env"/);
    expect(() => resolveKubernetesOptions({ deleteGracePeriodSeconds: -1 }, env)).to.throw(InvalidOptionError, /"deleteGracePeriodSeconds" must be an integer >= 0/);
    expect(() => resolveKubernetesOptions({ kubeconfig: '/no/such/file' }, env)).to.throw(InvalidOptionError, /"kubeconfig" must be the path of an existing kubeconfig file/);
  });
});

describe('runner pod states', function () {
  const pod = (status: V1Pod['status'], metadata: V1Pod['metadata'] = {}): V1Pod => ({ metadata: { name: 'r', ...metadata }, status });
  it('is running only with an IP and a running runner container', function () {
    expect(runnerPodState(pod({ phase: 'Pending', podIP: '10.0.0.1' }))).to.deep.equal({ kind: 'pending', waitingFor: 'the scheduler to place it on a node' });
    expect(runnerPodState(pod({ phase: 'Running', podIP: '10.0.0.1', containerStatuses: [{ name: 'runner', image: 'i', imageID: '', ready: true, restartCount: 0, state: { running: {} } }] })))
      .to.deep.equal({ kind: 'running', ip: '10.0.0.1' });
  });

  it('names why a pod ended: OOMKilled with its exit code, an eviction, a deletion', function () {
    const oom = { name: 'runner', image: 'i', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 137, reason: 'OOMKilled' } } };
    expect(runnerPodState(pod({ phase: 'Failed', containerStatuses: [oom] }))).to.deep.equal({ kind: 'ended', reason: 'pod r failed: OOMKilled (exit 137)' });
    expect(runnerPodState(pod({ phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' })))
      .to.deep.equal({ kind: 'ended', reason: 'pod r was evicted by the kubelet (The node was low on resource: memory.)' });
    expect(runnerPodState(pod({ phase: 'Running' }), { deleted: true })).to.deep.equal({ kind: 'ended', reason: 'pod r was deleted' });
    const evicted = pod(
      { phase: 'Running', conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'EvictionByEvictionAPI', message: 'Eviction API: evicting' }] },
      { deletionTimestamp: new Date() },
    );
    expect(runnerPodState(evicted)).to.deep.equal({ kind: 'failed', reason: 'pod r is being evicted (EvictionByEvictionAPI (Eviction API: evicting))' });
    expect((runnerPodState(evicted, { deleted: true }) as { reason: string }).reason).to.match(/^pod r was evicted \(EvictionByEvictionAPI/);
  });

  it('fails on waiting reasons that do not clear by themselves, and waits through those that may (pulls, Unschedulable), saying what for', function () {
    const waiting = (reason: string) => pod({ phase: 'Pending', containerStatuses: [{ name: 'runner', image: 'i', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, message: 'm' } } }] });
    for (const reason of ['InvalidImageName', 'CrashLoopBackOff', 'CreateContainerConfigError']) {
      expect(runnerPodState(waiting(reason))).to.deep.equal({ kind: 'failed', reason: `pod r cannot start: ${reason} (m)` });
    }
    for (const reason of ['ErrImagePull', 'ImagePullBackOff']) {
      expect(runnerPodState(waiting(reason))).to.deep.equal({ kind: 'pending', waitingFor: `the kubelet: ${reason} (m)`, pullFailure: true });
    }
    expect(runnerPodState(waiting('ContainerCreating'))).to.deep.equal({ kind: 'pending', waitingFor: 'the kubelet: ContainerCreating (m)', pullFailure: false });
    const unschedulable = pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes' }] });
    expect(runnerPodState(unschedulable).kind).to.equal('failed');
    expect(runnerPodState(unschedulable, { waitWhenUnschedulable: true })).to.deep.equal({ kind: 'pending', waitingFor: 'the scheduler: Unschedulable (0/3 nodes)' });
    expect(resolveKubernetesOptions({}, { POD_NAME: 'a', POD_NAMESPACE: 'b' }).waitWhenUnschedulable, 'waiting is the default').to.equal(true);
  });
});
