import { expect } from 'chai';
import { request } from 'node:https';
import { PatchStrategy, setHeaderOptions, type CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { startEmulatedCluster, type EmulatedCluster } from '../../src/testing/index.js';
import { coreApi, expectApiError, rawRequest, sleeperPod, waitForPod, waitForPodGone } from './helpers.js';

const POD_MANAGER_RULES = [{ apiGroups: [''], resources: ['pods'], verbs: ['create', 'get', 'list', 'delete', 'patch', 'watch'] }];

describe('Emulated API server', function () {
  let cluster: EmulatedCluster;
  let api: CoreV1Api;

  before(async function () {
    cluster = await startEmulatedCluster();
    api = coreApi(cluster);
    for (const name of ['crud', 'secrets', 'paging']) await api.createNamespace({ body: { metadata: { name } } });
  });

  after(async function () {
    await cluster?.stop();
  });

  describe('transport and authentication', function () {
    it('serves HTTPS with a certificate for 127.0.0.1 signed by the cluster CA', async function () {
      const body = await new Promise<string>((resolve, reject) => {
        const req = request(`${cluster.url}/version`, { ca: cluster.caPem }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve(text));
        });
        req.on('error', reject);
        req.end();
      });
      expect(JSON.parse(body)).to.include({ major: '1', minor: '32' });
      expect(cluster.url).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
    });

    it('refuses a request without a valid bearer token with 401 Unauthorized', async function () {
      const response = await rawRequest(cluster, 'GET', '/api/v1/namespaces/default/pods', undefined, { Authorization: 'Bearer not-a-token' });
      expect(response.status).to.equal(401);
      expect(JSON.parse(response.text)).to.deep.include({ kind: 'Status', reason: 'Unauthorized', code: 401 });
      try {
        await coreApi(cluster, 'not-a-token').listNamespacedPod({ namespace: 'default' });
        expect.fail('expected 401');
      } catch (error) {
        expect((error as { code?: number }).code).to.equal(401);
      }
    });
  });

  describe('pods', function () {
    const namespace = 'crud';

    it('creates a pod from generateName, with uid, resourceVersion and creationTimestamp set', async function () {
      const pod = sleeperPod('');
      delete pod.metadata!.name;
      pod.metadata!.generateName = 'runner-';
      const created = await api.createNamespacedPod({ namespace, body: pod });
      expect(created.metadata!.name).to.match(/^runner-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
      expect(created.metadata!.uid).to.match(/^[0-9a-f-]{36}$/);
      expect(Number(created.metadata!.resourceVersion)).to.be.greaterThan(0);
      expect(created.metadata!.creationTimestamp).to.be.instanceOf(Date);
      expect(created.metadata!.namespace).to.equal(namespace);
      expect(created.status!.phase).to.equal('Pending');
      expect(created.spec!.serviceAccountName).to.equal('default');
      await api.deleteNamespacedPod({ namespace, name: created.metadata!.name!, gracePeriodSeconds: 0 });
    });

    it('gets, lists with label and field selectors, patches and deletes pods', async function () {
      await api.createNamespacedPod({ namespace, body: sleeperPod('alpha', { metadata: { labels: { app: 'flame', role: 'runner' } } }) });
      await api.createNamespacedPod({ namespace, body: sleeperPod('beta', { metadata: { labels: { app: 'flame', role: 'parent' } } }) });
      await api.createNamespacedPod({ namespace, body: sleeperPod('gamma', { metadata: { labels: { app: 'other' } } }) });

      const alpha = await api.readNamespacedPod({ namespace, name: 'alpha' });
      expect(alpha.metadata!.labels).to.deep.equal({ app: 'flame', role: 'runner' });

      const flame = await api.listNamespacedPod({ namespace, labelSelector: 'app=flame' });
      expect(flame.items.map((p) => p.metadata!.name)).to.deep.equal(['alpha', 'beta']);
      const notRunner = await api.listNamespacedPod({ namespace, labelSelector: 'app in (flame,other),role!=runner' });
      expect(notRunner.items.map((p) => p.metadata!.name)).to.deep.equal(['beta', 'gamma']);
      const byName = await api.listNamespacedPod({ namespace, fieldSelector: 'metadata.name=gamma' });
      expect(byName.items.map((p) => p.metadata!.name)).to.deep.equal(['gamma']);

      await waitForPod(cluster, namespace, 'alpha', (p) => p.status?.phase === 'Running');
      const running = await api.listNamespacedPod({ namespace, fieldSelector: 'status.phase=Running,metadata.name=alpha' });
      expect(running.items.map((p) => p.metadata!.name)).to.deep.equal(['alpha']);

      const merged = await api.patchNamespacedPod(
        { namespace, name: 'alpha', body: { metadata: { labels: { role: null, patched: 'merge' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      expect(merged.metadata!.labels).to.deep.equal({ app: 'flame', patched: 'merge' });
      expect(Number(merged.metadata!.resourceVersion)).to.be.greaterThan(Number(alpha.metadata!.resourceVersion));
      const strategic = await api.patchNamespacedPod(
        { namespace, name: 'alpha', body: { metadata: { annotations: { note: 'strategic' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      );
      expect(strategic.metadata!.annotations).to.deep.equal({ note: 'strategic' });
      expect(strategic.metadata!.labels).to.deep.equal({ app: 'flame', patched: 'merge' });
      const jsonPatched = await api.patchNamespacedPod(
        { namespace, name: 'alpha', body: [{ op: 'add', path: '/metadata/labels/json', value: 'yes' }] },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
      expect(jsonPatched.metadata!.labels!.json).to.equal('yes');

      for (const name of ['alpha', 'beta', 'gamma']) await api.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 });
      const left = await api.listNamespacedPod({ namespace });
      expect(left.items).to.have.length(0);
    });

    it('sets deletionTimestamp on a graceful delete and removes the pod once its process is gone', async function () {
      await api.createNamespacedPod({ namespace, body: sleeperPod('graceful', { spec: { terminationGracePeriodSeconds: 5 } }) });
      await waitForPod(cluster, namespace, 'graceful', (p) => p.status?.phase === 'Running');
      const deleting = await api.deleteNamespacedPod({ namespace, name: 'graceful' });
      expect(deleting.metadata!.deletionTimestamp).to.be.instanceOf(Date);
      expect(deleting.metadata!.deletionGracePeriodSeconds).to.equal(5);
      await waitForPodGone(cluster, namespace, 'graceful');
      const status = await expectApiError(api.readNamespacedPod({ namespace, name: 'graceful' }));
      expect(status.reason).to.equal('NotFound');
    });

    it('patches the status subresource without touching the spec', async function () {
      await api.createNamespacedPod({ namespace, body: sleeperPod('status-patch') });
      const patched = await api.patchNamespacedPodStatus(
        { namespace, name: 'status-patch', body: { status: { message: 'hello from a controller' } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      expect(patched.status!.message).to.equal('hello from a controller');
      const ignored = await api.patchNamespacedPod(
        { namespace, name: 'status-patch', body: { status: { message: 'ignored on the main resource' } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      expect(ignored.status!.message).to.equal('hello from a controller');
      await api.deleteNamespacedPod({ namespace, name: 'status-patch', gracePeriodSeconds: 0 });
    });

    it('answers 404 NotFound with a real Status body', async function () {
      const status = await expectApiError(api.readNamespacedPod({ namespace, name: 'x' }));
      expect(status).to.deep.include({ httpCode: 404, code: 404, reason: 'NotFound', message: 'pods "x" not found' });
      expect(status.details).to.deep.equal({ name: 'x', kind: 'pods' });
    });

    it('answers 409 AlreadyExists for a duplicate name', async function () {
      await api.createNamespacedPod({ namespace, body: sleeperPod('twice') });
      const status = await expectApiError(api.createNamespacedPod({ namespace, body: sleeperPod('twice') }));
      expect(status).to.deep.include({ httpCode: 409, reason: 'AlreadyExists', message: 'pods "twice" already exists' });
      await api.deleteNamespacedPod({ namespace, name: 'twice', gracePeriodSeconds: 0 });
    });

    it('answers 409 Conflict for an update from a stale resourceVersion', async function () {
      const created = await api.createNamespacedPod({ namespace, body: sleeperPod('stale', { metadata: { labels: { v: '1' } } }) });
      await api.patchNamespacedPod({ namespace, name: 'stale', body: { metadata: { labels: { v: '2' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
      created.metadata!.labels = { v: '3' };
      const status = await expectApiError(api.replaceNamespacedPod({ namespace, name: 'stale', body: created }));
      expect(status).to.deep.include({ httpCode: 409, reason: 'Conflict' });
      expect(status.message).to.equal(
        'Operation cannot be fulfilled on pods "stale": the object has been modified; please apply your changes to the latest version and try again',
      );
      await api.deleteNamespacedPod({ namespace, name: 'stale', gracePeriodSeconds: 0 });
    });

    it('refuses an invalid pod with 422 Invalid and the causes', async function () {
      const noImage = sleeperPod('Bad_Name');
      delete (noImage.spec!.containers[0] as { image?: string }).image;
      const status = await expectApiError(api.createNamespacedPod({ namespace, body: noImage }));
      expect(status).to.deep.include({ httpCode: 422, code: 422, reason: 'Invalid' });
      expect(status.message).to.match(/^Pod "Bad_Name" is invalid: \[metadata\.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/);
      expect(status.details!.causes).to.deep.include({ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.containers[0].image' });

      const noContainers: V1Pod = { metadata: { name: 'empty' }, spec: { containers: [] } };
      const empty = await expectApiError(api.createNamespacedPod({ namespace, body: noContainers }));
      expect(empty.message).to.equal('Pod "empty" is invalid: spec.containers: Required value');

      const wrongType = await rawRequest(cluster, 'POST', `/api/v1/namespaces/${namespace}/pods`, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'typed' },
        spec: { containers: [{ name: 'c', image: 'node:20', args: 'not-a-list' }] },
      });
      expect(wrongType.status).to.equal(422);
      const wrongStatus = JSON.parse(wrongType.text) as { reason: string; details: { causes: { field: string; reason: string }[] } };
      expect(wrongStatus.reason).to.equal('Invalid');
      expect(wrongStatus.details.causes[0]).to.deep.include({ field: 'spec.containers[0].args', reason: 'FieldValueTypeInvalid' });
    });

    it('refuses a pod whose service account does not exist, as admission does', async function () {
      const status = await expectApiError(api.createNamespacedPod({ namespace, body: sleeperPod('lost', { spec: { serviceAccountName: 'ghost' } }) }));
      expect(status).to.deep.include({
        httpCode: 403,
        reason: 'Forbidden',
        message: `pods "lost" is forbidden: error looking up service account ${namespace}/ghost: serviceaccount "ghost" not found`,
      });
    });
  });

  describe('secrets', function () {
    it('creates, gets and deletes a secret as a plain stored object', async function () {
      const namespace = 'secrets';
      const created = await api.createNamespacedSecret({
        namespace,
        body: { metadata: { name: 'cookie' }, type: 'Opaque', data: { cookie: Buffer.from('s3cret').toString('base64') } },
      });
      expect(created.metadata!.uid).to.be.a('string');
      const read = await api.readNamespacedSecret({ namespace, name: 'cookie' });
      expect(Buffer.from(read.data!.cookie!, 'base64').toString()).to.equal('s3cret');
      await api.deleteNamespacedSecret({ namespace, name: 'cookie' });
      const status = await expectApiError(api.readNamespacedSecret({ namespace, name: 'cookie' }));
      expect(status).to.deep.include({ reason: 'NotFound', message: 'secrets "cookie" not found' });
    });
  });

  describe('RBAC', function () {
    const namespace = 'app-namespace';
    let limited: CoreV1Api;

    before(function () {
      limited = coreApi(cluster, cluster.createServiceAccount(namespace, 'myapp', POD_MANAGER_RULES));
    });

    it('lets a service account do what its role lists', async function () {
      await limited.createNamespacedPod({ namespace, body: sleeperPod('allowed') });
      const list = await limited.listNamespacedPod({ namespace });
      expect(list.items.map((p) => p.metadata!.name)).to.include('allowed');
      await limited.deleteNamespacedPod({ namespace, name: 'allowed', gracePeriodSeconds: 0 });
    });

    it('refuses a verb outside the role with 403 Forbidden and the real message', async function () {
      const status = await expectApiError(limited.listNamespacedSecret({ namespace }));
      expect(status).to.deep.include({
        httpCode: 403,
        code: 403,
        reason: 'Forbidden',
        message: `secrets is forbidden: User "system:serviceaccount:${namespace}:myapp" cannot list resource "secrets" in API group "" in the namespace "${namespace}"`,
      });
      const update = await expectApiError(limited.replaceNamespacedPod({ namespace, name: 'x', body: sleeperPod('x') }));
      expect(update.message).to.equal(
        `pods "x" is forbidden: User "system:serviceaccount:${namespace}:myapp" cannot update resource "pods" in API group "" in the namespace "${namespace}"`,
      );
      expect(update.details).to.deep.equal({ name: 'x', kind: 'pods' });
    });

    it('refuses the same verbs in another namespace', async function () {
      const status = await expectApiError(limited.listNamespacedPod({ namespace: 'default' }));
      expect(status.message).to.equal(
        `pods is forbidden: User "system:serviceaccount:${namespace}:myapp" cannot list resource "pods" in API group "" in the namespace "default"`,
      );
      const all = await expectApiError(limited.listPodForAllNamespaces());
      expect(all.message).to.equal(`pods is forbidden: User "system:serviceaccount:${namespace}:myapp" cannot list resource "pods" in API group "" at the cluster scope`);
    });
  });

  describe('lists', function () {
    it('pages with limit and continue', async function () {
      const namespace = 'paging';
      for (const name of ['p1', 'p2', 'p3']) {
        await api.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: { k: name } } });
      }
      const first = await api.listNamespacedSecret({ namespace, limit: 2 });
      expect(first.items.map((s) => s.metadata!.name)).to.deep.equal(['p1', 'p2']);
      expect(first.metadata!.remainingItemCount).to.equal(1);
      const second = await api.listNamespacedSecret({ namespace, limit: 2, _continue: first.metadata!._continue! });
      expect(second.items.map((s) => s.metadata!.name)).to.deep.equal(['p3']);
      expect(second.metadata!._continue).to.equal(undefined);
    });

    it('refuses an unsupported field selector with 400, as the real server does', async function () {
      const status = await expectApiError(api.listNamespacedPod({ namespace: 'default', fieldSelector: 'spec.containers=x' }));
      expect(status).to.deep.include({ httpCode: 400, reason: 'BadRequest', message: 'field label not supported: spec.containers' });
    });
  });
});

describe('Emulated API server, given bad input', function () {
  let cluster: EmulatedCluster;

  before(async function () {
    cluster = await startEmulatedCluster();
  });

  after(async function () {
    await cluster?.stop();
  });

  it('answers malformed bodies, unknown paths and bad parameters with a Status, and keeps serving', async function () {
    const malformed = await rawRequest(cluster, 'POST', '/api/v1/namespaces/default/pods', '{"kind": "Pod", ');
    expect(malformed.status).to.equal(400);
    expect(JSON.parse(malformed.text)).to.deep.include({ kind: 'Status', reason: 'BadRequest' });
    const wrongKind = await rawRequest(cluster, 'POST', '/api/v1/namespaces/default/pods', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x' } });
    expect(wrongKind.status).to.equal(400);
    const unknown = await rawRequest(cluster, 'GET', '/api/v1/widgets');
    expect(unknown.status).to.equal(404);
    expect(JSON.parse(unknown.text)).to.deep.include({ reason: 'NotFound', message: 'the server could not find the requested resource' });
    const badVersion = await rawRequest(cluster, 'GET', '/api/v1/namespaces/default/pods?watch=true&resourceVersion=abc');
    expect(badVersion.status).to.equal(400);
    const badGrace = await rawRequest(cluster, 'DELETE', '/api/v1/namespaces/default/secrets/none?gracePeriodSeconds=soon');
    expect(badGrace.status).to.equal(400);
    const tooLarge = await rawRequest(cluster, 'POST', '/api/v1/namespaces/default/secrets', { metadata: { name: 'big' }, stringData: { blob: 'x'.repeat(4 * 1024 * 1024) } });
    expect(tooLarge.status).to.equal(413);
    const method = await rawRequest(cluster, 'POST', '/api/v1/namespaces/default/pods/named', {});
    expect(method.status).to.equal(405);
    const list = await coreApi(cluster).listNamespacedPod({ namespace: 'default' });
    expect(list.items).to.deep.equal([]);
  });

  it('refuses to listen anywhere but on loopback, and refuses nonsense options', async function () {
    let error: unknown;
    try {
      await startEmulatedCluster({ host: '0.0.0.0' });
    } catch (e) {
      error = e;
    }
    expect(String(error)).to.include('loopback only');
    error = undefined;
    try {
      await startEmulatedCluster({ historyLimit: 0 });
    } catch (e) {
      error = e;
    }
    expect(String(error)).to.include('historyLimit must be a positive integer');
  });
});
