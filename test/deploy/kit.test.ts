import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CoreV1Api, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { loadAll } from 'js-yaml';
import { KubernetesBackend } from '../../src/backends/kubernetes/backend.js';
import { startNode } from '../../src/cluster/node.js';
import { BootError, KubernetesError } from '../../src/errors.js';
import { decodeParent } from '../../src/flame/parent.js';
import { EXTERNAL_POD_ANNOTATION, POD_IP_ANNOTATION, startEmulatedCluster, type EmulatedCluster } from '../../src/testing/index.js';
import { startPool } from '../helpers/pools.js';
import { waitFor } from '../helpers/wait.js';
import { coreApi, isAlive, kubectl, waitForPod } from '../kube/helpers.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const KIT = join(ROOT, 'deploy/kubernetes');
const NAMESPACE = 'flame-example';

interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: { template?: { metadata?: { labels?: Record<string, string> }; spec: V1PodSpec } };
}

/** The kit as `kubectl apply -k` applies it. */
function kit(): Manifest[] {
  return loadAll(execFileSync('kubectl', ['kustomize', KIT], { encoding: 'utf8' })) as Manifest[];
}

describe('The deploy kit on the emulated cluster', function () {
  this.timeout(90_000);
  let cluster: EmulatedCluster;
  let api: CoreV1Api;
  let dir: string;
  let parents = 0;

  before(async function () {
    cluster = await startEmulatedCluster();
    api = coreApi(cluster);
    dir = mkdtempSync(join(tmpdir(), 'flame-kit-'));
    // The real `kubectl apply -k` of the whole kit, NetworkPolicies included: RBAC is enforced from
    // the applied Role and RoleBinding, the Deployment's controller creates the app's pod.
    const applied = await kubectl(cluster.kubeconfigPath, ['apply', '-k', KIT]);
    expect(applied.code, applied.stderr).to.equal(0);
  });

  after(async function () {
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A pod of the kit's Deployment, as its ReplicaSet creates it; `edit` changes its spec first. */
  async function deploymentPod(edit: (spec: V1PodSpec) => void = () => {}): Promise<string> {
    const deployment = kit().find((m) => m.kind === 'Deployment')!;
    const template = structuredClone(deployment.spec!.template!);
    edit(template.spec);
    const name = `flame-square-7d9c5-${++parents}`;
    await api.createNamespacedPod({ namespace: NAMESPACE, body: { metadata: { name, labels: template.metadata?.labels ?? {} }, spec: template.spec } as V1Pod });
    return name;
  }

  const runnersOf = async (parentUid: string) =>
    (await api.listNamespacedPod({ namespace: NAMESPACE, labelSelector: `flame-actors/parent-uid=${parentUid}` })).items;

  it('serves /square from a runner pod: runner pods carry our labels, the owner, the inherited scheduling and security settings, no token, no cookie, an encrypted link; deleting the Deployment leaves nothing', async function () {
    let parent: V1Pod | undefined;
    await waitFor(async () => {
      const pods = await api.listNamespacedPod({ namespace: NAMESPACE, labelSelector: 'app.kubernetes.io/name=flame-square' });
      parent = pods.items.find((p) => p.status?.phase === 'Running' && !!p.status.podIP);
      return parent !== undefined;
    }, 'the Deployment\'s pod to run', 30_000, 100);
    const name = parent!.metadata!.name!;
    expect(parent!.metadata!.ownerReferences![0]!.kind, 'created by the ReplicaSet').to.equal('ReplicaSet');
    const ip = parent!.status!.podIP!;
    await waitFor(async () => (await fetch(`http://${ip}:8080/healthz`).then((r) => r.ok, () => false)), 'the app to answer /healthz', 20_000, 100);
    const response = await fetch(`http://${ip}:8080/square?x=7`);
    const body = await response.json() as { result: number; runner: string };
    expect(response.status, JSON.stringify(body)).to.equal(200);
    expect(body.result).to.equal(49);

    const [runner] = await runnersOf(parent!.metadata!.uid!);
    expect(runner, 'a runner pod').to.exist;
    expect(body.runner).to.equal(`square-1@${runner!.status!.podIP}`);
    expect(runner!.metadata!.labels).to.deep.equal({ 'flame-actors/pool': 'square', 'flame-actors/runner': 'square-1', 'flame-actors/parent-uid': parent!.metadata!.uid });
    expect(runner!.metadata!.ownerReferences).to.deep.equal([{ apiVersion: 'v1', kind: 'Pod', name, uid: parent!.metadata!.uid, controller: true }]);
    const spec = runner!.spec!;
    expect(spec.securityContext).to.deep.include({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } });
    expect(parent!.spec!.tolerations, 'tolerations admission gave the parent').to.have.length.greaterThan(0);
    expect(spec.tolerations, 'inherited by the runner').to.deep.equal(parent!.spec!.tolerations);
    expect(JSON.stringify(spec), 'no service-account token volume').not.to.include('kube-api-access');
    expect(spec.containers[0]!.securityContext).to.deep.include({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(spec.automountServiceAccountToken).to.equal(false);
    expect(spec.serviceAccountName).to.equal('flame-square');
    expect(spec.containers[0]!.ports).to.equal(undefined);
    expect(spec.containers[0]!.readinessProbe).to.equal(undefined);
    // The link to the runner is encrypted (the Kubernetes backend's default): the parent token says so.
    const token = spec.containers[0]!.env!.find((e) => e.name === 'FLAME_PARENT')!.value!;
    expect(decodeParent(token).tls).to.equal(true);
    const cookie = spec.containers[0]!.env!.find((e) => e.name === 'FLAME_COOKIE')!;
    expect(cookie.value).to.equal(undefined);
    expect(cookie.valueFrom!.secretKeyRef!.name).to.equal(`${name}-square-flame-cookie`);

    // Deleting the Deployment leaves no runner pod, Secret or process.
    const pids = cluster.podProcesses().filter((p) => p.namespace === NAMESPACE).map((p) => p.pid);
    expect(pids.length).to.be.at.least(2);
    const deleted = await kubectl(cluster.kubeconfigPath, ['-n', NAMESPACE, 'delete', 'deployment', 'flame-square']);
    expect(deleted.code, deleted.stderr).to.equal(0);
    await waitFor(async () => (await api.listNamespacedPod({ namespace: NAMESPACE })).items.length === 0, 'every pod to be gone', 50_000, 100);
    await waitFor(async () => (await api.listNamespacedSecret({ namespace: NAMESPACE, labelSelector: 'flame-actors/pool=square' })).items.length === 0, 'the cookie Secret to be gone', 10_000, 100);
    await waitFor(() => pids.every((pid) => !isAlive(pid)), 'every pod process to exit', 10_000, 50);
  });

  it('the Deployment without POD_IP fails fast, naming POD_IP and showing the YAML', async function () {
    const name = await deploymentPod((spec) => {
      spec.containers[0]!.env = spec.containers[0]!.env!.filter((e) => e.name !== 'POD_IP' && e.name !== 'FLAME_NODE_NAME');
    });
    // The Deployment's pods restart (restartPolicy Always): the first exit is what a user sees.
    const crashed = await waitForPod(cluster, NAMESPACE, name, (p) => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) > 0 && !!p.status?.containerStatuses?.[0]?.lastState?.terminated, 20_000);
    const exited = crashed.status!.containerStatuses![0]!.lastState!.terminated!;
    // In CrashLoopBackOff the container's log is still the crashed run's.
    const log = await api.readNamespacedPodLog({ namespace: NAMESPACE, name });
    expect(exited.exitCode, log).to.not.equal(0);
    expect(log).to.match(/MissingEnvError[\s\S]*listens on 127\.0\.0\.1, which runner pods cannot reach[\s\S]*POD_IP is not set[\s\S]*fieldPath: status\.podIP/);
    expect(await runnersOf(crashed.metadata!.uid!)).to.have.length(0);
    await api.deleteNamespacedPod({ namespace: NAMESPACE, name, gracePeriodSeconds: 0 });
  });

  it('Pod Security "restricted" refuses a runner pod without the inherited securityContext, with the admission message and not an RBAC hint; a ResourceQuota refusal names the quota', async function () {
    // The app's identity, as the kit binds it (a token from TokenRequest), and its pod template.
    const token = await kubectl(cluster.kubeconfigPath, ['-n', NAMESPACE, 'create', 'token', 'flame-square']);
    expect(token.code, token.stderr).to.equal(0);
    const kubeconfig = join(dir, 'kubeconfig-flame-square');
    cluster.writeKubeconfig(kubeconfig, token.stdout.trim(), NAMESPACE);
    const deployment = kit().find((m) => m.kind === 'Deployment')!;
    const podName = 'flame-square-external';
    // This test process plays the app's pod (restricted-compliant, so admitted).
    await api.createNamespacedPod({
      namespace: NAMESPACE,
      body: { metadata: { name: podName, annotations: { [EXTERNAL_POD_ANNOTATION]: 'true', [POD_IP_ANNOTATION]: '127.0.0.1' } }, spec: structuredClone(deployment.spec!.template!.spec) },
    });
    const node = await startNode({ name: 'psa@127.0.0.1', port: 0, cookie: 'psa-cookie', log: false });
    try {
      const error = await startPool({
        name: 'psa', node, min: 1, max: 1, log: false,
        backend: new KubernetesBackend({ kubeconfig, podName, namespace: NAMESPACE, inherit: ['tolerations'], log: false }),
      }).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(BootError);
      const message = (error as Error).message;
      expect(message).to.match(/Pod Security "restricted(:latest)?" in namespace "flame-example" refuses the runner pod: .*(allowPrivilegeEscalation|runAsNonRoot|capabilities|seccompProfile)/);
      expect(message).to.match(/not a missing RBAC grant/);
      expect(message).not.to.match(/grant "create"/);
      const cause = (error as Error).cause as KubernetesError;
      expect(cause).to.be.instanceOf(KubernetesError);
      expect(cause).to.include({ statusCode: 403, refusal: 'admission' });
      // With what the parent pod has (the default), the same pool's runner pods are admitted.
      const admitted = await startPool({
        name: 'psa-ok', node, max: 1, log: false, shutdownTimeout: 1000,
        backend: new KubernetesBackend({ kubeconfig, podName, namespace: NAMESPACE, log: false }),
      });
      expect(await admitted.call(() => 'admitted')).to.equal('admitted');
      await admitted.stop();
      // A quota refusal names the quota (the parent pod already uses the only pod allowed).
      await api.createNamespacedResourceQuota({ namespace: NAMESPACE, body: { metadata: { name: 'runner-quota' }, spec: { hard: { pods: '1' } } } });
      try {
        const refused = await startPool({
          name: 'quota', node, min: 1, max: 1, log: false,
          backend: new KubernetesBackend({ kubeconfig, podName, namespace: NAMESPACE, log: false }),
        }).then(() => undefined, (e: unknown) => e);
        expect((refused as Error).message).to.match(/ResourceQuota "runner-quota" in namespace "flame-example" refuses to create pods: .*exceeded quota: runner-quota/);
        expect((refused as Error).cause).to.include({ refusal: 'quota' });
      } finally {
        await api.deleteNamespacedResourceQuota({ namespace: NAMESPACE, name: 'runner-quota' });
      }
    } finally {
      await node.stop();
      await api.deleteNamespacedPod({ namespace: NAMESPACE, name: podName, gracePeriodSeconds: 0 });
    }
  });
});

