import { expect } from 'chai';
import { startNode, type ClusterNode } from '../../src/cluster/node.js';
import { EncodeError, PayloadTooLargeError, RemoteError, isFlameError } from '../../src/errors.js';
import { settlesWithin } from '../helpers/wait.js';

const COOKIE = 'requests-cookie';

describe('ClusterNode requests and replies', function () {
  let server: ClusterNode;
  let client: ClusterNode;

  beforeEach(async function () {
    server = await startNode({ name: 'server@127.0.0.21', port: 0, cookie: COOKIE, log: false });
    client = await startNode({ name: 'client@127.0.0.22', port: 0, cookie: COOKIE, log: false, maxPayload: 64 * 1024 });
    await client.connect(server.name);
  });

  afterEach(async function () {
    await Promise.all([client.stop(), server.stop()]);
  });

  for (const [what, result, pattern] of [
    ['a function', () => () => 1, /functions cannot be sent/],
    ['a Symbol', () => Symbol('s'), /Symbols cannot be sent/],
    ['a circular object', () => {
      const o: Record<string, unknown> = {};
      o.self = o;
      return o;
    }, /circular or nested too deeply/],
  ] as const) {
    it(`rejects at once with EncodeError when the result is ${what}`, async function () {
      server.handle('bad', () => result());
      const { error, ms } = await settlesWithin(client.request(server.name, 'bad', null, { timeout: 20_000 }), 15_000, 'request');
      expect(error).to.be.instanceOf(EncodeError);
      expect((error as Error).message).to.match(/the result of "bad" on server@127\.0\.0\.21:\d+ cannot be sent/).and.to.match(pattern);
      expect(ms).to.be.below(5000);
    });
  }

  it('rejects at once with PayloadTooLargeError when the result exceeds what the requester accepts', async function () {
    server.handle('huge', () => 'x'.repeat(200 * 1024));
    const { error, ms } = await settlesWithin(client.request(server.name, 'huge', null, { timeout: 20_000 }), 15_000, 'request');
    expect(error).to.be.instanceOf(PayloadTooLargeError);
    expect((error as Error).message).to.match(/the result of "huge" .* cannot be sent: message of \d+ bytes exceeds the maxPayload/);
    expect(ms).to.be.below(5000);
    expect(await client.request(server.name, 'huge2', null).catch((e: Error) => e.message)).to.match(/unknown service/);
  });

  for (const [what, thrown] of [
    ['a string', 'boom'],
    ['a number', 42],
    ['null', null],
    ['a plain object', { reason: 'quota', left: 0 }],
  ] as const) {
    it(`rejects with a RemoteError (coded, carrying the value) when the handler throws ${what}`, async function () {
      server.handle('throws', () => {
        throw thrown;
      });
      const error = await client.request(server.name, 'throws', null).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(RemoteError);
      expect(isFlameError(error, 'FLAME_ERR_REMOTE')).to.equal(true);
      expect((error as RemoteError).details.thrown).to.deep.equal(thrown);
      expect((error as Error).message).to.match(/"throws" on server@127\.0\.0\.21:\d+ threw a non-Error value/);
    });
  }

  it('names a custom Error subclass that left name as "Error" after its constructor', async function () {
    class InvoiceRejected extends Error {
      invoice = 'INV-7';
    }
    server.handle('custom', async () => {
      throw new InvoiceRejected('no funds');
    });
    const error = await client.request(server.name, 'custom', null).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(RemoteError);
    expect((error as Error).name).to.equal('InvoiceRejected');
    expect(String(error)).to.equal('InvoiceRejected: no funds');
    expect((error as { invoice?: string }).invoice).to.equal('INV-7');
  });
});

describe('ClusterNode spawnRemote with an injected module loader', function () {
  it('loads the factory module through the target node\'s loadModule (the runner passes its own resolution rule)', async function () {
    const actors = new URL('../fixtures/actors.js', import.meta.url).href;
    const asked: string[] = [];
    const host = await startNode({
      name: 'host@127.0.0.58', port: 0, cookie: COOKIE, log: false,
      loadModule: (specifier) => {
        asked.push(specifier);
        return import(actors) as Promise<Record<string, unknown>>;
      },
    });
    const caller = await startNode({ name: 'caller@127.0.0.59', port: 0, cookie: COOKIE, log: false });
    try {
      const ref = await caller.spawnRemote(host.name, { module: 'app:actors', export: 'counter' }, [1]);
      expect(ref).to.have.property('type', 'actor');
      expect(asked).to.deep.equal(['app:actors']);
    } finally {
      await Promise.all([caller.stop(), host.stop()]);
    }
  });
});
