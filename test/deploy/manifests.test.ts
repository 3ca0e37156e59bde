import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAll } from 'js-yaml';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { requiredPermissions } from '../../src/backends/kubernetes/runner-pods.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const KIT = join(ROOT, 'deploy/kubernetes');

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

/** The official schema of each kind the kit uses. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  Namespace: Namespace as never,
  ServiceAccount: ServiceAccount as never,
  Role: Role as never,
  RoleBinding: RoleBinding as never,
  Deployment: Deployment as never,
  NetworkPolicy: NetworkPolicy as never,
};

function files(): Manifest[] {
  return readdirSync(KIT).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .flatMap((f) => loadAll(readFileSync(join(KIT, f), 'utf8')) as Manifest[]);
}

/** What `kubectl apply -k` applies (kustomize built into kubectl). */
function built(): Manifest[] {
  return loadAll(execFileSync('kubectl', ['kustomize', KIT], { encoding: 'utf8' })) as Manifest[];
}

const byKind = (all: Manifest[], kind: string) => all.filter((m) => m.kind === kind);

describe('The deploy kit (deploy/)', function () {
  this.timeout(20_000);

  it('lists every manifest in its kustomization, and kustomize builds them into one namespace', function () {
    const kustomization = loadAll(readFileSync(join(KIT, 'kustomization.yaml'), 'utf8'))[0] as { resources: string[] };
    const onDisk = readdirSync(KIT).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
    expect([...kustomization.resources].sort()).to.deep.equal(onDisk);
    const all = built();
    expect(all.map((m) => m.kind).sort()).to.deep.equal(['Deployment', 'Namespace', 'NetworkPolicy', 'NetworkPolicy', 'Role', 'RoleBinding', 'ServiceAccount']);
    for (const m of all) if (m.kind !== 'Namespace') expect(m.metadata.namespace, `${m.kind} ${m.metadata.name}`).to.equal('flame-example');
  });

  it('every manifest validates against the official schema (kubernetes-models), as written and as built', function () {
    for (const m of [...files(), ...built()]) {
      const Model = MODELS[m.kind];
      expect(Model, `a model for ${m.kind}`).to.exist;
      expect(() => new Model!(m as never).validate(), `${m.kind} ${m.metadata.name}`).not.to.throw();
    }
  });

  it('the Role grants exactly the verbs the backend uses, bound to the Deployment\'s service account', function () {
    const all = built();
    const [role] = byKind(all, 'Role') as unknown as { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] }[];
    const granted = role!.rules.flatMap((r) => r.resources.flatMap((res) => r.verbs.map((v) => `${v} ${res}`))).sort();
    expect(granted).to.deep.equal(requiredPermissions(true).map(([v, r]) => `${v} ${r}`).sort());
    const [binding] = byKind(all, 'RoleBinding') as unknown as { subjects: { kind: string; name: string; namespace?: string }[]; roleRef: { name: string } }[];
    const [deployment] = byKind(all, 'Deployment') as unknown as { spec: { template: { spec: { serviceAccountName: string } } } }[];
    expect(binding!.roleRef.name).to.equal('flame-runners');
    expect(binding!.subjects).to.deep.equal([{ kind: 'ServiceAccount', name: deployment!.spec.template.spec.serviceAccountName, namespace: 'flame-example' }]);
  });

  it('the Deployment has the downward-API env, the cluster port, a readiness probe, a restricted securityContext and a grace period above the pools\' shutdown', function () {
    const [deployment] = byKind(built(), 'Deployment') as unknown as { spec: { template: { spec: import('@kubernetes/client-node').V1PodSpec } } }[];
    const pod = deployment!.spec.template.spec;
    const app = pod.containers[0]!;
    expect(app.image).to.equal('flame-actors-example:dev');
    const env = Object.fromEntries(app.env!.map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]));
    expect(env).to.include({ POD_NAME: 'metadata.name', POD_NAMESPACE: 'metadata.namespace', POD_IP: 'status.podIP', FLAME_NODE_NAME: 'square@$(POD_IP)', FLAME_PORT: '4370', FLAME_BACKEND: 'kubernetes', PORT: '8080' });
    expect(app.env!.findIndex((e) => e.name === 'POD_IP')).to.be.below(app.env!.findIndex((e) => e.name === 'FLAME_NODE_NAME'));
    expect(app.ports!.map((p) => p.containerPort)).to.deep.equal([8080, 4370]);
    expect(app.readinessProbe!.httpGet).to.deep.equal({ path: '/healthz', port: 'http' });
    // Pod Security "restricted": non-root, no privilege escalation, every capability dropped, a seccomp profile.
    expect(pod.securityContext).to.deep.include({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(app.securityContext).to.deep.include({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    // stopOnSignals gives the pools the grace period minus 2 s; the example's shutdownTimeout is 10 s.
    const example = readFileSync(join(ROOT, 'examples/k8s-square-service.ts'), 'utf8');
    const shutdownTimeout = Number(/shutdownTimeout: ([\d_]+)/.exec(example)![1]!.replace(/_/g, ''));
    expect(pod.terminationGracePeriodSeconds! * 1000 - 2000).to.be.above(shutdownTimeout * 3);
    const [namespace] = byKind(built(), 'Namespace');
    expect(namespace!.metadata.labels).to.include({ 'pod-security.kubernetes.io/enforce': 'restricted' });
  });

  it('the NetworkPolicy lets only runner pods reach the parent\'s cluster port, and only the parent reach runners', function () {
    const policies = byKind(built(), 'NetworkPolicy') as unknown as { metadata: { name: string }; spec: { podSelector: { matchLabels: Record<string, string> }; ingress: { from?: { podSelector: { matchLabels: Record<string, string> } }[]; ports: { port: number }[] }[] } }[];
    const parent = policies.find((p) => p.spec.podSelector.matchLabels['app.kubernetes.io/name'] === 'flame-square')!;
    const toCluster = parent.spec.ingress.filter((rule) => rule.ports.some((p) => p.port === 4370));
    expect(toCluster).to.have.length(1);
    expect(toCluster[0]!.from).to.deep.equal([{ podSelector: { matchLabels: { 'flame-actors/pool': 'square' } } }]);
    const runners = policies.find((p) => p.spec.podSelector.matchLabels['flame-actors/pool'] === 'square')!;
    expect(runners.spec.ingress).to.deep.equal([{ from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'flame-square' } } }], ports: [{ port: 4370, protocol: 'TCP' }] }]);
  });

  it('the Dockerfile builds in stages, installs production dependencies only, runs as non-root, the app doubling as runner', function () {
    const dockerfile = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');
    expect(dockerfile.match(/^FROM /gm)).to.have.length(3);
    expect(dockerfile).to.match(/^RUN npm ci --omit=dev/m);
    expect(dockerfile).to.match(/^USER 1000:1000$/m);
    expect(dockerfile).to.match(/^ENTRYPOINT \["node", "dist\/examples\/k8s-square-service\.js"\]$/m);
    const example = readFileSync(join(ROOT, 'examples/k8s-square-service.ts'), 'utf8');
    expect(example).to.match(/if \(isRunner\(\)\) \{[\s\S]*await startRunner\(\);/);
  });
});
