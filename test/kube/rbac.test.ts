import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulatedCluster, type EmulatedCluster } from '../../src/testing/index.js';
import { coreApi, kubectl, nodePod, rawRequest, waitForPod } from './helpers.js';

/** The README's Role for the Kubernetes backend, its binding and the account, as a user applies them. */
const RBAC_YAML = `apiVersion: v1
kind: Namespace
metadata: { name: app }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: myapp, namespace: app }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: flame-runners, namespace: app }
rules:
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["get", "list", "watch", "create", "delete"]
  - apiGroups: [""]
    resources: ["secrets"]
    verbs: ["create", "delete"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: myapp-flame-runners, namespace: app }
subjects: [{ kind: ServiceAccount, name: myapp, namespace: app }]
roleRef: { kind: Role, name: flame-runners, apiGroup: rbac.authorization.k8s.io }
`;

describe('Emulated cluster RBAC', function () {
  this.timeout(40_000);
  let cluster: EmulatedCluster;
  let dir: string;
  let admin: string;
  let token: string;
  let asApp: string;

  before(async function () {
    cluster = await startEmulatedCluster();
    admin = cluster.kubeconfigPath;
    dir = mkdtempSync(join(tmpdir(), 'rbac-spec-'));
    writeFileSync(join(dir, 'rbac.yaml'), RBAC_YAML);
  });

  after(async function () {
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('applies Role, RoleBinding, ServiceAccount and Namespace manifests', async function () {
    const applied = await kubectl(admin, ['apply', '-f', join(dir, 'rbac.yaml')]);
    expect(applied.stderr).to.equal('');
    expect(applied.stdout.trim().split('\n')).to.deep.equal([
      'namespace/app created',
      'serviceaccount/myapp created',
      'role.rbac.authorization.k8s.io/flame-runners created',
      'rolebinding.rbac.authorization.k8s.io/myapp-flame-runners created',
    ]);
    const again = await kubectl(admin, ['apply', '-f', join(dir, 'rbac.yaml')]);
    expect(again.stdout).to.include('role.rbac.authorization.k8s.io/flame-runners unchanged');
    const roles = await kubectl(admin, ['get', 'roles,rolebindings', '-n', 'app', '-o', 'name']);
    expect(roles.stdout.trim().split('\n')).to.deep.equal(['role.rbac.authorization.k8s.io/flame-runners', 'rolebinding.rbac.authorization.k8s.io/myapp-flame-runners']);
  });

  it('issues a token with kubectl create token (TokenRequest)', async function () {
    const created = await kubectl(admin, ['create', 'token', 'myapp', '-n', 'app', '--duration=20m']);
    expect(created.stderr).to.equal('');
    token = created.stdout.trim();
    expect(token).to.match(/^[A-Za-z0-9_-]{40,}$/);
    asApp = join(dir, 'myapp.kubeconfig');
    cluster.writeKubeconfig(asApp, token, 'app');
    const whoami = await kubectl(asApp, ['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
    expect(whoami.stdout).to.equal('system:serviceaccount:app:myapp');
    const tooShort = await kubectl(admin, ['create', 'token', 'myapp', '-n', 'app', '--duration=1m']);
    expect(tooShort.stderr.trim()).to.equal(
      'error: failed to create token: TokenRequest.authentication.k8s.io "myapp" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes',
    );
  });

  it('enforces the applied Role: allowed verbs pass, others get the real 403', async function () {
    expect((await kubectl(asApp, ['get', 'pods'])).stderr.trim()).to.equal('No resources found in app namespace.');
    const secrets = await kubectl(asApp, ['get', 'secrets']);
    expect(secrets.stderr.trim()).to.equal(
      'Error from server (Forbidden): secrets is forbidden: User "system:serviceaccount:app:myapp" cannot list resource "secrets" in API group "" in the namespace "app"',
    );
    const otherNamespace = await kubectl(asApp, ['get', 'pods', '-n', 'default']);
    expect(otherNamespace.stderr.trim()).to.equal(
      'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:app:myapp" cannot list resource "pods" in API group "" in the namespace "default"',
    );
    const roles = await kubectl(asApp, ['get', 'roles']);
    expect(roles.stderr.trim()).to.equal(
      'Error from server (Forbidden): roles.rbac.authorization.k8s.io is forbidden: User "system:serviceaccount:app:myapp" cannot list resource "roles" in API group "rbac.authorization.k8s.io" in the namespace "app"',
    );
  });

  it('answers kubectl auth can-i and auth can-i --list from the stored rules', async function () {
    expect((await kubectl(asApp, ['auth', 'can-i', 'create', 'pods'])).stdout.trim()).to.equal('yes');
    expect((await kubectl(asApp, ['auth', 'can-i', 'patch', 'pods'])).stdout.trim()).to.equal('no');
    expect((await kubectl(asApp, ['auth', 'can-i', 'delete', 'secrets'])).stdout.trim()).to.equal('yes');
    const list = (await kubectl(asApp, ['auth', 'can-i', '--list'])).stdout;
    expect(list).to.match(/^Resources\s+Non-Resource URLs\s+Resource Names\s+Verbs/);
    expect(list).to.match(/\npods\s+\[\]\s+\[\]\s+\[get list watch create delete\]/);
    expect(list).to.match(/\nsecrets\s+\[\]\s+\[\]\s+\[create delete\]/);
    expect(list).to.match(/\nselfsubjectaccessreviews\.authorization\.k8s\.io\s+\[\]\s+\[\]\s+\[create\]/);
    expect(list).to.match(/\nselfsubjectreviews\.authentication\.k8s\.io\s+\[\]\s+\[\]\s+\[create\]/);
  });

  it('follows changes to the bindings: a ClusterRoleBinding to view grants reads everywhere, deleting the RoleBinding revokes', async function () {
    expect((await kubectl(admin, ['create', 'clusterrolebinding', 'myapp-view', '--clusterrole=view', '--serviceaccount=app:myapp'])).stdout.trim()).to.equal(
      'clusterrolebinding.rbac.authorization.k8s.io/myapp-view created',
    );
    expect((await kubectl(asApp, ['get', 'pods', '-n', 'default'])).code).to.equal(0);
    expect((await kubectl(admin, ['delete', 'rolebinding', 'myapp-flame-runners', '-n', 'app'])).code).to.equal(0);
    expect((await kubectl(asApp, ['auth', 'can-i', 'create', 'pods'])).stdout.trim()).to.equal('no');
    expect((await kubectl(asApp, ['auth', 'can-i', 'list', 'pods'])).stdout.trim()).to.equal('yes');
    await kubectl(admin, ['delete', 'clusterrolebinding', 'myapp-view']);
    expect((await kubectl(asApp, ['auth', 'can-i', 'list', 'pods'])).stdout.trim()).to.equal('no');
    await kubectl(admin, ['apply', '-f', join(dir, 'rbac.yaml')]);
  });

  it('refuses invalid RBAC objects with the real 422 texts', async function () {
    writeFileSync(
      join(dir, 'bad-role.yaml'),
      'apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: { name: bad, namespace: app }\nrules:\n  - resources: ["pods"]\n    verbs: ["get"]\n',
    );
    const role = await kubectl(admin, ['apply', '-f', join(dir, 'bad-role.yaml')]);
    expect(role.stderr).to.include('The Role "bad" is invalid: rules[0].apiGroups: Required value: resource rules must supply at least one api group');
    const changed = RBAC_YAML.replace('roleRef: { kind: Role, name: flame-runners', 'roleRef: { kind: ClusterRole, name: view');
    writeFileSync(join(dir, 'changed.yaml'), changed);
    const binding = await kubectl(admin, ['apply', '-f', join(dir, 'changed.yaml')]);
    expect(binding.stderr).to.include('The RoleBinding "myapp-flame-runners" is invalid: roleRef: Invalid value:');
    expect(binding.stderr).to.include('cannot change roleRef');
  });

  it('gives a pod of the account the kube-api-access volume and a token that authenticates as the account', async function () {
    const api = coreApi(cluster);
    const script = [
      `const fs = require('fs'); const https = require('https');`,
      `const dir = process.env.FLAME_SERVICEACCOUNT_DIR;`,
      `const req = https.request('https://' + process.env.KUBERNETES_SERVICE_HOST + ':' + process.env.KUBERNETES_SERVICE_PORT + '/apis/authentication.k8s.io/v1/selfsubjectreviews',`,
      `  { method: 'POST', ca: fs.readFileSync(dir + '/ca.crt'), headers: { Authorization: 'Bearer ' + fs.readFileSync(dir + '/token', 'utf8'), 'Content-Type': 'application/json' } },`,
      `  (res) => { let t = ''; res.on('data', (c) => (t += c)); res.on('end', () => console.log(JSON.parse(t).status.userInfo.username)); });`,
      `req.end(JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }));`,
    ].join('\n');
    const created = await api.createNamespacedPod({ namespace: 'app', body: nodePod('as-myapp', script, { spec: { serviceAccountName: 'myapp' } }) });
    const volume = created.spec!.volumes!.find((v) => v.name.startsWith('kube-api-access-'));
    expect(volume?.projected?.sources?.map((s) => Object.keys(s)[0])).to.deep.equal(['serviceAccountToken', 'configMap', 'downwardAPI']);
    expect(created.spec!.containers[0]!.volumeMounts).to.deep.include({ name: volume!.name, readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' });
    await waitForPod(cluster, 'app', 'as-myapp', (p) => p.status?.phase === 'Succeeded', 20_000);
    expect((await api.readNamespacedPodLog({ namespace: 'app', name: 'as-myapp' })).trim()).to.equal('system:serviceaccount:app:myapp');
  });

  it('revokes the account tokens when the account is deleted', async function () {
    expect((await kubectl(admin, ['delete', 'serviceaccount', 'myapp', '-n', 'app'])).code).to.equal(0);
    const refused = await rawRequest(cluster, 'GET', '/api/v1/namespaces/app/pods', undefined, { Authorization: `Bearer ${token}` });
    expect(refused.status).to.equal(401);
  });
});
