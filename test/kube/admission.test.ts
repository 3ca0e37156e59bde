import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CoreV1Api } from '@kubernetes/client-node';
import { startEmulatedCluster, type EmulatedCluster } from '../../src/testing/index.js';
import { coreApi, expectApiError, kubectl, sleeperPod, waitForPod, waitForPodGone } from './helpers.js';

const NETWORK_POLICY_YAML = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: runners, namespace: default }
spec:
  podSelector: { matchLabels: { flame-actors/pool: square } }
  ingress:
    - from:
        - podSelector: { matchLabels: { app.kubernetes.io/name: flame-square } }
        - ipBlock: { cidr: 10.0.0.0/8, except: [10.1.0.0/16] }
      ports:
        - port: 4370
`;

describe('Emulated cluster admission and namespaces', function () {
  this.timeout(40_000);
  let cluster: EmulatedCluster;
  let api: CoreV1Api;
  let dir: string;
  let kc: string;

  before(async function () {
    cluster = await startEmulatedCluster();
    api = coreApi(cluster);
    kc = cluster.kubeconfigPath;
    dir = mkdtempSync(join(tmpdir(), 'admission-spec-'));
  });

  after(async function () {
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('namespaces', function () {
    it('starts with default, kube-node-lease, kube-public and kube-system, each with its default account and kube-root-ca.crt', async function () {
      const names = (await api.listNamespace()).items.map((n) => n.metadata!.name);
      expect(names).to.deep.equal(['default', 'kube-node-lease', 'kube-public', 'kube-system']);
      for (const namespace of names) {
        expect((await api.readNamespacedServiceAccount({ namespace: namespace!, name: 'default' })).metadata!.name).to.equal('default');
        const ca = await api.readNamespacedConfigMap({ namespace: namespace!, name: 'kube-root-ca.crt' });
        expect(ca.data!['ca.crt']).to.equal(cluster.caPem);
      }
    });

    it('refuses objects in a namespace that does not exist with 404 namespaces "x" not found', async function () {
      const status = await expectApiError(api.createNamespacedPod({ namespace: 'nowhere', body: sleeperPod('p') }));
      expect(status).to.deep.include({ httpCode: 404, reason: 'NotFound', message: 'namespaces "nowhere" not found' });
      const viaKubectl = await kubectl(kc, ['-n', 'nowhere', 'create', 'configmap', 'x', '--from-literal=a=b']);
      expect(viaKubectl.stderr.trim()).to.equal('error: failed to create configmap: namespaces "nowhere" not found');
    });

    it('creates a namespace with kubectl create namespace, populated at once', async function () {
      expect((await kubectl(kc, ['create', 'namespace', 'fresh'])).stdout.trim()).to.equal('namespace/fresh created');
      const listed = await kubectl(kc, ['-n', 'fresh', 'get', 'serviceaccounts,configmaps', '-o', 'name']);
      expect(listed.stdout.trim().split('\n')).to.deep.equal(['serviceaccount/default', 'configmap/kube-root-ca.crt']);
      const labels = await kubectl(kc, ['get', 'namespace', 'fresh', '-o', 'jsonpath={.metadata.labels}']);
      expect(JSON.parse(labels.stdout)).to.deep.equal({ 'kubernetes.io/metadata.name': 'fresh' });
    });
  });

  describe('pod defaults', function () {
    it('fills in what the real server and its admission plugins add', async function () {
      const created = await api.createNamespacedPod({ namespace: 'default', body: sleeperPod('defaults') });
      const spec = created.spec!;
      expect(spec).to.include({ dnsPolicy: 'ClusterFirst', schedulerName: 'default-scheduler', enableServiceLinks: true, priority: 0, serviceAccountName: 'default', preemptionPolicy: 'PreemptLowerPriority' });
      expect(spec.tolerations).to.deep.equal([
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      ]);
      const volume = spec.volumes!.find((v) => /^kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}$/.test(v.name));
      expect(volume!.projected).to.deep.equal({
        defaultMode: 420,
        sources: [
          { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
        ],
      });
      expect(spec.containers[0]!.volumeMounts).to.deep.equal([{ name: volume!.name, readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }]);
      expect(created.status!.qosClass).to.equal('BestEffort');
      await api.deleteNamespacedPod({ namespace: 'default', name: 'defaults', gracePeriodSeconds: 0 });
      await waitForPodGone(cluster, 'default', 'defaults');
    });

    it('mounts no token when automountServiceAccountToken is false', async function () {
      const created = await api.createNamespacedPod({ namespace: 'default', body: sleeperPod('no-token', { spec: { automountServiceAccountToken: false } }) });
      expect(created.spec!.volumes ?? []).to.deep.equal([]);
      await api.deleteNamespacedPod({ namespace: 'default', name: 'no-token', gracePeriodSeconds: 0 });
      await waitForPodGone(cluster, 'default', 'no-token');
    });
  });

  describe('NetworkPolicy', function () {
    it('stores a policy with its defaults (policyTypes, TCP)', async function () {
      writeFileSync(join(dir, 'netpol.yaml'), NETWORK_POLICY_YAML);
      expect((await kubectl(kc, ['apply', '-f', join(dir, 'netpol.yaml')])).stdout.trim()).to.equal('networkpolicy.networking.k8s.io/runners created');
      const stored = JSON.parse((await kubectl(kc, ['get', 'netpol', 'runners', '-o', 'json'])).stdout) as { spec: { policyTypes: string[]; ingress: { ports: { protocol: string }[] }[] } };
      expect(stored.spec.policyTypes).to.deep.equal(['Ingress']);
      expect(stored.spec.ingress[0]!.ports[0]!.protocol).to.equal('TCP');
    });

    it('refuses an invalid policy with the real 422 causes', async function () {
      writeFileSync(
        join(dir, 'bad-netpol.yaml'),
        NETWORK_POLICY_YAML.replace('name: runners', 'name: bad').replace('cidr: 10.0.0.0/8', 'cidr: 10.0.0.0/33').replace('port: 4370', 'port: 70000'),
      );
      const refused = await kubectl(kc, ['apply', '-f', join(dir, 'bad-netpol.yaml')]);
      expect(refused.stderr).to.include('The NetworkPolicy "bad" is invalid:');
      expect(refused.stderr).to.include('spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive');
      expect(refused.stderr).to.include('spec.ingress[0].from[1].ipBlock.cidr: Invalid value: "10.0.0.0/33"');
    });
  });

  describe('Pod Security admission', function () {
    before(async function () {
      await api.createNamespace({ body: { metadata: { name: 'strict', labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } } });
      await api.createNamespace({ body: { metadata: { name: 'base', labels: { 'pod-security.kubernetes.io/enforce': 'baseline' } } } });
    });

    it('refuses a plain pod in a restricted namespace with the real message', async function () {
      const status = await expectApiError(api.createNamespacedPod({ namespace: 'strict', body: sleeperPod('plain') }));
      expect(status).to.deep.include({ httpCode: 403, reason: 'Forbidden' });
      expect(status.message).to.equal(
        'pods "plain" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "main" must set securityContext.allowPrivilegeEscalation=false), ' +
          'unrestricted capabilities (container "main" must set securityContext.capabilities.drop=["ALL"]), ' +
          'runAsNonRoot != true (pod or container "main" must set securityContext.runAsNonRoot=true), ' +
          'seccompProfile (pod or container "main" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
      );
    });

    it('admits a pod that meets restricted, and refuses baseline violations in a baseline namespace', async function () {
      const compliant = sleeperPod('compliant', {
        spec: { securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } } },
        container: { securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } },
      });
      expect((await api.createNamespacedPod({ namespace: 'strict', body: compliant })).metadata!.name).to.equal('compliant');
      await api.deleteNamespacedPod({ namespace: 'strict', name: 'compliant', gracePeriodSeconds: 0 });
      await waitForPodGone(cluster, 'strict', 'compliant');
      expect((await api.createNamespacedPod({ namespace: 'base', body: sleeperPod('ordinary') })).metadata!.name).to.equal('ordinary');
      await api.deleteNamespacedPod({ namespace: 'base', name: 'ordinary', gracePeriodSeconds: 0 });
      await waitForPodGone(cluster, 'base', 'ordinary');
      const privileged = sleeperPod('root', { spec: { hostNetwork: true }, container: { securityContext: { privileged: true } } });
      const status = await expectApiError(api.createNamespacedPod({ namespace: 'base', body: privileged }));
      expect(status.message).to.equal(
        'pods "root" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), privileged (container "main" must not set securityContext.privileged=true)',
      );
    });

    it('shows the refusal through kubectl', async function () {
      const run = await kubectl(kc, ['-n', 'strict', 'run', 'nope', '--image=node:20', '--restart=Never']);
      expect(run.stderr.trim()).to.match(/^Error from server \(Forbidden\): pods "nope" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false/);
    });
  });

  describe('ResourceQuota', function () {
    before(async function () {
      await api.createNamespace({ body: { metadata: { name: 'quota' } } });
      await api.createNamespacedResourceQuota({ namespace: 'quota', body: { metadata: { name: 'compute' }, spec: { hard: { pods: '2', 'requests.cpu': '1', 'requests.memory': '1Gi' } } } });
    });

    const sized = (name: string, cpu: string, memory = '256Mi') => sleeperPod(name, { container: { resources: { requests: { cpu, memory } } } });

    it('refuses a pod that names no request for a quota\'d resource', async function () {
      const status = await expectApiError(api.createNamespacedPod({ namespace: 'quota', body: sleeperPod('unsized') }));
      expect(status.message).to.equal('pods "unsized" is forbidden: failed quota: compute: must specify requests.cpu for: main; requests.memory for: main');
    });

    it('admits pods within the quota, reports usage, and refuses the one that would exceed it with the real message', async function () {
      await api.createNamespacedPod({ namespace: 'quota', body: sized('a', '500m') });
      await api.createNamespacedPod({ namespace: 'quota', body: sized('b', '500m', '512Mi') });
      const quota = await api.readNamespacedResourceQuota({ namespace: 'quota', name: 'compute' });
      expect(quota.status).to.deep.equal({ hard: { pods: '2', 'requests.cpu': '1', 'requests.memory': '1Gi' }, used: { pods: '2', 'requests.cpu': '1', 'requests.memory': '768Mi' } });
      const status = await expectApiError(api.createNamespacedPod({ namespace: 'quota', body: sized('c', '100m') }));
      expect(status).to.deep.include({ httpCode: 403, reason: 'Forbidden' });
      expect(status.message).to.equal('pods "c" is forbidden: exceeded quota: compute, requested: pods=1,requests.cpu=100m, used: pods=2,requests.cpu=1, limited: pods=2,requests.cpu=1');
      await api.deleteNamespacedPod({ namespace: 'quota', name: 'b', gracePeriodSeconds: 0 });
      await waitForPodGone(cluster, 'quota', 'b');
      expect((await api.createNamespacedPod({ namespace: 'quota', body: sized('c', '100m') })).metadata!.name).to.equal('c');
      for (const name of ['a', 'c']) {
        await waitForPod(cluster, 'quota', name, (p) => p.status?.phase === 'Running');
        await api.deleteNamespacedPod({ namespace: 'quota', name, gracePeriodSeconds: 0 });
        await waitForPodGone(cluster, 'quota', name);
      }
    });
  });
});
