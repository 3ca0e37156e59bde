import { expect } from 'chai';
import { startEmulatedCluster, type EmulatedCluster } from '../../src/testing/index.js';
import { rawRequest } from './helpers.js';

interface StatusBody {
  kind: string;
  status: string;
  code: number;
  reason: string;
  message: string;
  details?: { name?: string; group?: string; kind?: string; causes?: { reason?: string; message?: string; field?: string }[]; retryAfterSeconds?: number };
}

function lines(text: string): { type: string; object: { kind?: string; metadata?: { name?: string; resourceVersion?: string; annotations?: Record<string, string> } } }[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as ReturnType<typeof lines>[number]);
}

describe('Emulated API server query parameters', function () {
  let cluster: EmulatedCluster;

  before(async function () {
    cluster = await startEmulatedCluster({ minRequestTimeoutSeconds: 1 });
    await rawRequest(cluster, 'POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'present' }, data: { a: 'b' } });
  });

  after(async function () {
    await cluster?.stop();
  });

  describe('booleans, decoded as the API server parameter codec does', function () {
    for (const value of ['True', 'TRUE', 't', '1', 'yes']) {
      it(`takes watch=${value} for a watch`, async function () {
        const response = await rawRequest(cluster, 'GET', `/api/v1/namespaces/default/configmaps?watch=${value}&timeoutSeconds=1`);
        expect(response.status).to.equal(200);
        const events = lines(response.text);
        expect(events.map((e) => `${e.type}:${e.object.metadata?.name}`)).to.include('ADDED:present');
      });
    }

    for (const value of ['False', 'FALSE', 'false', '0']) {
      it(`takes watch=${value} for a list`, async function () {
        const response = await rawRequest(cluster, 'GET', `/api/v1/namespaces/default/configmaps?watch=${value}`);
        expect(response.status).to.equal(200);
        expect(JSON.parse(response.text)).to.include({ kind: 'ConfigMapList' });
      });
    }

    it('takes allowWatchBookmarks=True and sendInitialEvents=True as true (the initial-events-end bookmark comes)', async function () {
      const response = await rawRequest(
        cluster,
        'GET',
        '/api/v1/namespaces/default/configmaps?watch=True&allowWatchBookmarks=True&sendInitialEvents=True&resourceVersionMatch=NotOlderThan&timeoutSeconds=1',
      );
      const bookmark = lines(response.text).find((e) => e.type === 'BOOKMARK');
      expect(bookmark?.object.metadata?.annotations).to.deep.equal({ 'k8s.io/initial-events-end': 'true' });
    });

    it('refuses a non-integer integer parameter with 400', async function () {
      const response = await rawRequest(cluster, 'GET', '/api/v1/namespaces/default/configmaps?limit=many');
      expect(response.status).to.equal(400);
      expect(JSON.parse(response.text)).to.include({ reason: 'BadRequest', message: 'strconv.ParseInt: parsing "many": invalid syntax' });
    });
  });

  describe('list resourceVersion', function () {
    it('answers a list at a revision not reached yet with 504 Timeout "Too large resource version" after waiting for it', async function () {
      const list = JSON.parse((await rawRequest(cluster, 'GET', '/api/v1/namespaces/default/configmaps')).text) as { metadata: { resourceVersion: string } };
      const future = Number(list.metadata.resourceVersion) + 1000;
      const started = Date.now();
      const response = await rawRequest(cluster, 'GET', `/api/v1/namespaces/default/configmaps?resourceVersion=${future}`);
      expect(Date.now() - started).to.be.at.least(2900);
      expect(response.status).to.equal(504);
      expect(response.headers['retry-after']).to.equal('1');
      const status = JSON.parse(response.text) as StatusBody;
      expect(status).to.deep.include({ kind: 'Status', status: 'Failure', code: 504, reason: 'Timeout' });
      expect(status.message).to.match(new RegExp(`^Timeout: Too large resource version: ${future}, current: \\d+$`));
      expect(status.details).to.deep.equal({ causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 });
    });

    it('answers the list once the store reaches the asked-for revision within the wait', async function () {
      const list = JSON.parse((await rawRequest(cluster, 'GET', '/api/v1/namespaces/default/configmaps')).text) as { metadata: { resourceVersion: string } };
      const next = Number(list.metadata.resourceVersion) + 1;
      const pending = rawRequest(cluster, 'GET', `/api/v1/namespaces/default/configmaps?resourceVersion=${next}&resourceVersionMatch=NotOlderThan`);
      await rawRequest(cluster, 'POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'arrives' } });
      const response = await pending;
      expect(response.status).to.equal(200);
      const names = (JSON.parse(response.text) as { items: { metadata: { name: string } }[] }).items.map((i) => i.metadata.name);
      expect(names).to.include('arrives');
    });

    it('refuses resourceVersionMatch without resourceVersion with 422, as ValidateListOptions does', async function () {
      const response = await rawRequest(cluster, 'GET', '/api/v1/namespaces/default/configmaps?resourceVersionMatch=NotOlderThan');
      expect(response.status).to.equal(422);
      const status = JSON.parse(response.text) as StatusBody;
      expect(status).to.deep.include({
        reason: 'Invalid',
        message: 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided',
      });
      expect(status.details).to.deep.equal({
        name: '',
        group: 'meta.k8s.io',
        kind: 'ListOptions',
        causes: [{ reason: 'FieldValueForbidden', message: 'Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided', field: 'resourceVersionMatch' }],
      });
    });

    it('refuses an unknown resourceVersionMatch and Exact at resourceVersion 0', async function () {
      const unknown = await rawRequest(cluster, 'GET', '/api/v1/namespaces/default/configmaps?resourceVersion=1&resourceVersionMatch=Newest');
      expect(unknown.status).to.equal(422);
      expect((JSON.parse(unknown.text) as StatusBody).message).to.equal(
        'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Unsupported value: "Newest": supported values: "Exact", "NotOlderThan", ""',
      );
      const exactZero = await rawRequest(cluster, 'GET', '/api/v1/namespaces/default/configmaps?resourceVersion=0&resourceVersionMatch=Exact');
      expect(exactZero.status).to.equal(422);
    });
  });

  describe('watch timing', function () {
    it('ends a watch without timeoutSeconds after min-request-timeout times 1 to 2', async function () {
      const started = Date.now();
      const response = await rawRequest(cluster, 'GET', '/api/v1/namespaces/default/configmaps?watch=true');
      const lasted = Date.now() - started;
      expect(response.status).to.equal(200);
      expect(lasted).to.be.within(900, 4000);
    });

    it('sends a bookmark 2 s before the deadline when the bookmark interval is longer', async function () {
      const started = Date.now();
      const response = await rawRequest(cluster, 'GET', '/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true&timeoutSeconds=3');
      expect(Date.now() - started).to.be.at.least(2900);
      const bookmarks = lines(response.text).filter((e) => e.type === 'BOOKMARK');
      expect(bookmarks).to.have.length(1);
      expect(bookmarks[0]!.object).to.include({ kind: 'ConfigMap' });
    });
  });
});

describe('Emulated API server watch defaults', function () {
  it('bookmarks once a minute and ends watches after 30 to 60 min by default', async function () {
    const { WatchHub, DEFAULT_WATCH_TIMING } = await import('../../src/testing/kube/watch.js');
    const { ObjectStore } = await import('../../src/testing/kube/store.js');
    expect(DEFAULT_WATCH_TIMING).to.deep.equal({ bookmarkIntervalMs: 60_000, minRequestTimeoutSeconds: 1800 });
    const hub = new WatchHub(new ObjectStore(10));
    for (let i = 0; i < 50; i++) expect(hub.timeoutMs(undefined)).to.be.within(1_800_000, 3_600_000);
    expect(hub.timeoutMs(0)).to.be.within(1_800_000, 3_600_000);
    expect(hub.timeoutMs(5)).to.equal(5000);
  });
});
