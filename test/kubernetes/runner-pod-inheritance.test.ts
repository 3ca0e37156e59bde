import { expect } from 'chai';
import type { V1Pod } from '@kubernetes/client-node';
import { resolveKubernetesOptions, type KubernetesBackendOptions } from '../../src/backends/kubernetes/options.js';
import { RunnerPodTemplate } from '../../src/backends/kubernetes/runner-pod-template.js';
import { checkParentAddress } from '../../src/backends/kubernetes/runner-pods.js';
import { refusalOf, toKubernetesError } from '../../src/backends/kubernetes/client.js';
import { InvalidOptionError, MissingEnvError } from '../../src/errors.js';
import type { RunnerSpec } from '../../src/flame/backend.js';

/** A parent pod as a GPU, restricted, config-mounting Deployment would make it (after admission). */
const PARENT: V1Pod = {
  metadata: { name: 'vision-5f6-abc', namespace: 'ml', uid: 'uid-parent', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'vision-5f6', uid: 'uid-rs', controller: true }] },
  spec: {
    serviceAccountName: 'vision',
    nodeName: 'gpu-node-7',
    hostname: 'vision',
    subdomain: 'svc',
    nodeSelector: { 'kubernetes.io/arch': 'arm64' },
    tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
    affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'gpu', operator: 'In', values: ['a100'] }] }] } } },
    securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
    priorityClassName: 'batch',
    runtimeClassName: 'nvidia',
    dnsPolicy: 'ClusterFirst',
    dnsConfig: { options: [{ name: 'ndots', value: '2' }] },
    hostAliases: [{ ip: '10.0.0.9', hostnames: ['models.internal'] }],
    enableServiceLinks: false,
    volumes: [
      { name: 'config', configMap: { name: 'vision-config' } },
      { name: 'limits', downwardAPI: { items: [{ path: 'mem', resourceFieldRef: { containerName: 'web', resource: 'limits.memory' } }] } },
      { name: 'kube-api-access-x7k2p', projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }] } },
    ],
    containers: [
      { name: 'istio-proxy', image: 'proxy:1', ports: [{ containerPort: 15001 }] },
      {
        name: 'web',
        image: 'vision:3',
        ports: [{ containerPort: 8080 }],
        readinessProbe: { httpGet: { path: '/healthz', port: 8080 } },
        livenessProbe: { httpGet: { path: '/healthz', port: 8080 } },
        lifecycle: { preStop: { exec: { command: ['sleep', '5'] } } },
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        env: [{ name: 'MEM_LIMIT', valueFrom: { resourceFieldRef: { containerName: 'web', resource: 'limits.memory' } } }],
        volumeMounts: [
          { name: 'config', mountPath: '/etc/vision' },
          { name: 'limits', mountPath: '/etc/limits' },
          { name: 'kube-api-access-x7k2p', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
        ],
        resources: { limits: { 'nvidia.com/gpu': '1', memory: '8Gi' } },
      },
    ],
  },
  status: { podIP: '10.1.2.3', podIPs: [{ ip: '10.1.2.3' }, { ip: 'fd00::1:2:3' }] },
};
const SPEC: RunnerSpec = { id: 'gpu-1', env: { FLAME_PARENT: 'token', FLAME_COOKIE: 'c' }, shutdownTimeout: 10_000 };

function build(options: KubernetesBackendOptions = {}): V1Pod {
  const resolved = resolveKubernetesOptions({ podName: 'vision-5f6-abc', namespace: 'ml', containerName: 'web', ...options }, {});
  const t = RunnerPodTemplate.fromParent(PARENT, 'gpu', resolved);
  return t.podFor(SPEC, t.cookieSecretName);
}

describe('Runner pods inherit the parent pod', function () {
  it('inherits scheduling, security, volumes, priority, runtime class, DNS, host aliases and service links by default', function () {
    const spec = build().spec!;
    expect(spec).to.deep.include({
      nodeSelector: PARENT.spec!.nodeSelector,
      tolerations: PARENT.spec!.tolerations,
      affinity: PARENT.spec!.affinity,
      securityContext: PARENT.spec!.securityContext,
      priorityClassName: 'batch',
      runtimeClassName: 'nvidia',
      dnsPolicy: 'ClusterFirst',
      dnsConfig: PARENT.spec!.dnsConfig,
      hostAliases: PARENT.spec!.hostAliases,
      enableServiceLinks: false,
    });
    const runner = spec.containers[0]!;
    expect(runner.securityContext).to.deep.equal({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(runner.volumeMounts!.map((m) => m.name)).to.deep.equal(['config', 'limits']);
    expect(spec.volumes!.map((v) => v.name)).to.deep.equal(['config', 'limits']);
  });

  it('never copies what names or serves the parent: nodeName, hostname, probes, ports, lifecycle, the injected token volume; no token is mounted', function () {
    const pod = build();
    const spec = pod.spec!;
    for (const key of ['nodeName', 'hostname', 'subdomain'] as const) expect(spec[key], key).to.equal(undefined);
    const runner = spec.containers[0]!;
    for (const key of ['ports', 'readinessProbe', 'livenessProbe', 'startupProbe', 'lifecycle'] as const) expect(runner[key], key).to.equal(undefined);
    expect(JSON.stringify(pod)).not.to.include('kube-api-access');
    expect(spec.automountServiceAccountToken).to.equal(false);
    expect(build({ automountServiceAccountToken: true }).spec!.automountServiceAccountToken).to.equal(true);
  });

  it('makes the parent pod its controller (drains and ReplicaSets treat runners as managed), never the parent\'s ReplicaSet, and lets the autoscaler evict it', function () {
    const pod = build({ podTemplate: (parent) => parent });
    expect(pod.metadata!.ownerReferences).to.deep.equal([{ apiVersion: 'v1', kind: 'Pod', name: 'vision-5f6-abc', uid: 'uid-parent', controller: true }]);
    expect(pod.metadata!.annotations!['cluster-autoscaler.kubernetes.io/safe-to-evict']).to.equal('true');
  });

  it('inherits only what the inherit option lists', function () {
    const spec = build({ inherit: ['tolerations'] }).spec!;
    expect(spec.tolerations).to.deep.equal(PARENT.spec!.tolerations);
    for (const key of ['nodeSelector', 'affinity', 'securityContext', 'volumes', 'priorityClassName', 'runtimeClassName', 'dnsPolicy', 'hostAliases', 'enableServiceLinks'] as const) {
      expect(spec[key], key).to.equal(undefined);
    }
    expect(spec.containers[0]!.securityContext).to.equal(undefined);
    expect(spec.containers[0]!.volumeMounts).to.equal(undefined);
    expect(() => build({ inherit: ['nodeName' as 'tolerations'] })).to.throw(InvalidOptionError, /option "inherit" must be an array of "nodeSelector", "tolerations"/);
  });

  it('a podTemplate returning the parent\'s own spec is made safe too, and picks the app container (not the sidecar listed first) as the runner', function () {
    const pod = build({ podTemplate: (parent) => ({ spec: parent.spec }) });
    const spec = pod.spec!;
    expect(spec.nodeName).to.equal(undefined);
    expect(spec.containers.map((c) => c.name)).to.deep.equal(['runner', 'istio-proxy']);
    expect(spec.containers[0]!.image).to.equal('vision:3');
    expect(spec.containers[0]!.readinessProbe).to.equal(undefined);
    expect(JSON.stringify(spec)).not.to.include('kube-api-access');
    expect(spec.automountServiceAccountToken).to.equal(false);
  });

  it('resourceFieldRef naming the renamed app container names the runner container, in env and downward-API volumes', function () {
    const spec = build().spec!;
    expect(spec.containers[0]!.env!.find((e) => e.name === 'MEM_LIMIT')!.valueFrom!.resourceFieldRef!.containerName).to.equal('runner');
    const limits = spec.volumes!.find((v) => v.name === 'limits')!;
    expect(limits.downwardAPI!.items![0]!.resourceFieldRef!.containerName).to.equal('runner');
    expect(PARENT.spec!.containers[1]!.env![0]!.valueFrom!.resourceFieldRef!.containerName, 'the parent pod is not modified').to.equal('web');
  });

  it('puts secretEnv values in the pool\'s Secret and only references in the pod spec', function () {
    const resolved = resolveKubernetesOptions({ podName: 'vision-5f6-abc', namespace: 'ml', containerName: 'web', secretEnv: { API_KEY: 'sk-very-secret' } }, {});
    const t = RunnerPodTemplate.fromParent(PARENT, 'gpu', resolved);
    const pod = t.podFor(SPEC, t.cookieSecretName);
    expect(JSON.stringify(pod)).not.to.include('sk-very-secret');
    expect(pod.spec!.containers[0]!.env!.find((e) => e.name === 'API_KEY')).to.deep.equal({
      name: 'API_KEY', valueFrom: { secretKeyRef: { name: 'vision-5f6-abc-gpu-flame-cookie', key: 'API_KEY' } },
    });
    expect(t.cookieSecret('c').stringData).to.deep.equal({ API_KEY: 'sk-very-secret', FLAME_COOKIE: 'c' });
    expect(() => resolveKubernetesOptions({ podName: 'a', namespace: 'b', secretEnv: { FLAME_COOKIE: 'x' } }, {})).to.throw(InvalidOptionError, /"secretEnv"/);
    expect(() => resolveKubernetesOptions({ podName: 'a', namespace: 'b', cookie: 'env', secretEnv: { K: 'x' } }, {})).to.throw(InvalidOptionError, /"secretEnv" must be used with cookie: "secret"/);
  });
});

describe('The parent address runner pods dial', function () {
  it('is the parent pod\'s IP: a loopback or other IP fails fast naming POD_IP with the YAML; IPv6 pod IPs and host names pass', function () {
    expect(() => checkParentAddress(PARENT, '127.0.0.1')).to.throw(MissingEnvError, /listens on 127\.0\.0\.1, which runner pods cannot reach[\s\S]*POD_IP is not set[\s\S]*fieldPath: status\.podIP/);
    expect(() => checkParentAddress(PARENT, '10.9.9.9')).to.throw(MissingEnvError, /POD_IP/);
    expect(() => checkParentAddress(PARENT, '10.1.2.3')).not.to.throw();
    expect(() => checkParentAddress(PARENT, 'fd00::1:2:3')).not.to.throw();
    expect(() => checkParentAddress(PARENT, 'vision.ml.svc')).not.to.throw();
  });
});

describe('403s explained', function () {
  const target = { verb: 'create' as const, resource: 'pods' as const, namespace: 'ml' };
  const client = { server: 'https://k', credentials: 'the token' };
  const forbidden = (message: string) => toKubernetesError({ code: 403, body: JSON.stringify({ kind: 'Status', reason: 'Forbidden', message, code: 403 }) }, target, client);

  it('an RBAC refusal names the verb and resource to grant', function () {
    const e = forbidden('pods is forbidden: User "system:serviceaccount:ml:vision" cannot create resource "pods" in API group "" in the namespace "ml"');
    expect(e.refusal).to.equal('rbac');
    expect(e.message).to.match(/^service account "ml\/vision" cannot create pods in namespace "ml": grant "create" on "pods" in its Role/);
    expect(e).to.include({ statusCode: 403, reason: 'Forbidden', verb: 'create', resource: 'pods', namespace: 'ml' });
  });

  it('a Pod Security refusal quotes the admission message and says what to change, not what to grant', function () {
    const e = forbidden('pods "vision-gpu-x" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "runner" must set securityContext.allowPrivilegeEscalation=false)');
    expect(e.refusal).to.equal('admission');
    expect(e.message).to.match(/^Pod Security "restricted:latest" in namespace "ml" refuses the runner pod: .*allowPrivilegeEscalation=false.*securityContext/);
    expect(e.message).not.to.match(/grant "/);
    expect(e.message).to.match(/not a missing RBAC grant/);
  });

  it('a quota refusal names the quota; a LimitRange refusal says so', function () {
    const q = forbidden('pods "x" is forbidden: exceeded quota: compute, requested: cpu=2, used: cpu=4, limited: cpu=4');
    expect(q.refusal).to.equal('quota');
    expect(q.message).to.match(/^ResourceQuota "compute" in namespace "ml" refuses to create pods: .*requested: cpu=2/);
    const l = forbidden('pods "x" is forbidden: maximum cpu usage per Container is 1, but limit is 2');
    expect(l.refusal).to.equal('limits');
    expect(l.message).to.match(/^a LimitRange in namespace "ml" refuses/);
    expect(refusalOf('admission webhook "policy.example.com" denied the request: no')).to.equal('admission');
  });
});
