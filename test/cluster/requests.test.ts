import { expect } from 'chai';
import { startNode, type ClusterNode, type ReplyReceiver } from '../../src/cluster/node.js';
import type { Peer } from '../../src/cluster/peer.js';
import { ReplyTable } from '../../src/cluster/replies.js';
import { AbortError, EncodeError, NodeStoppedError, PayloadTooLargeError, QueryTimeoutError, RemoteError, isFlameError } from '../../src/errors.js';
import { settlesWithin, waitFor } from '../helpers/wait.js';

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

  describe('requestTo (a receiver instead of a promise)', function () {
    /** A receiver recording every settlement; `settled` resolves on the first. */
    function recorder(): { calls: [boolean, unknown][]; settled: Promise<void>; receiver: ReplyReceiver } {
      const calls: [boolean, unknown][] = [];
      let done!: () => void;
      const settled = new Promise<void>((resolve) => (done = resolve));
      return { calls, settled, receiver: { settled: (ok, value) => void (calls.push([ok, value]), done()) } };
    }

    it('settles its receiver exactly once: with the result of a handler that returns a value or a promise, or with its error', async function () {
      server.handle('double', (n) => (n as number) * 2);
      server.handle('later', async (n) => (n as number) * 3);
      server.handle('fails', () => {
        throw new RangeError('no');
      });
      const [a, b, c] = [recorder(), recorder(), recorder()];
      client.requestTo(server.name, 'double', 21, a.receiver);
      client.requestTo(server.name, 'later', 2, b.receiver, 5000);
      client.requestTo(server.name, 'fails', null, c.receiver);
      await Promise.all([a.settled, b.settled, c.settled]);
      // A late duplicate would show up after a round trip more.
      await client.request(server.name, 'double', 1);
      expect(a.calls).to.deep.equal([[true, 42]]);
      expect(b.calls).to.deep.equal([[true, 6]]);
      expect(c.calls).to.have.length(1);
      expect(c.calls[0]![0]).to.equal(false);
      expect(c.calls[0]![1]).to.be.instanceOf(RangeError);
    });

    it('settles its receiver once with QueryTimeoutError, AbortError or NodeStoppedError, and cancels the remote work', async function () {
      let cancelled = 0;
      server.handle('hang', (_payload, context) => new Promise(() => context.onCancel(() => cancelled++)));
      const [timedOut, aborted, stopped] = [recorder(), recorder(), recorder()];
      const controller = new AbortController();
      client.requestTo(server.name, 'hang', null, timedOut.receiver, 50);
      client.requestTo(server.name, 'hang', null, aborted.receiver, undefined, controller.signal);
      controller.abort();
      await Promise.all([timedOut.settled, aborted.settled]);
      await client.stop();
      client.requestTo(server.name, 'hang', null, stopped.receiver);
      await stopped.settled;
      expect(timedOut.calls.map(([ok, e]) => [ok, (e as Error).constructor])).to.deep.equal([[false, QueryTimeoutError]]);
      expect(aborted.calls.map(([ok, e]) => [ok, (e as Error).constructor])).to.deep.equal([[false, AbortError]]);
      expect(stopped.calls.map(([ok, e]) => [ok, (e as Error).constructor])).to.deep.equal([[false, NodeStoppedError]]);
      await waitFor(() => cancelled === 2, 'both requests to be cancelled on the server', 5000);
    });
  });

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

describe('ReplyTable (what a node waits for, by id)', function () {
  type Entry = { kind: 'request'; peer: Peer; settled: unknown[]; settle(ok: boolean, value: unknown): void };
  const entry = (peer: Peer): Entry => {
    const e: Entry = { kind: 'request', peer, settled: [], settle: (ok, value) => void e.settled.push([ok, value]) };
    return e;
  };
  const a = { node: 'a' } as unknown as Peer;
  const b = { node: 'b' } as unknown as Peer;

  it('fails what is pending on a peer in the order it was made, once, and leaves the rest', function () {
    const table = new ReplyTable();
    const order: number[] = [];
    const made = Array.from({ length: 300 }, (_, i) => {
      const e = entry(i % 3 === 0 ? b : a);
      const id = table.add({ ...e, settle: (ok, value) => { order.push(id); e.settle(ok, value); } });
      return { id, e };
    });
    // Churn, as requests settle while others are made.
    for (const { id } of made.filter((_, i) => i % 2 === 1)) expect(table.settle(id, 'request', true, 'done')).to.equal(true);
    const reason = new Error('link down');
    expect(table.pendingOn(a)).to.equal(true);
    table.failPeer(a, reason);
    const expected = made.filter(({ e }, i) => e.peer === a && i % 2 === 0).map(({ id }) => id);
    expect(order.slice(-expected.length)).to.deep.equal(expected);
    expect(table.pendingOn(a)).to.equal(false);
    expect(table.pendingOn(b)).to.equal(true);
    // Only b's unsettled requests are left, each settled once.
    made.forEach(({ id, e }, i) => expect(table.settle(id, 'request', true, 'late')).to.equal(e.peer === b && i % 2 === 0));
    made.forEach(({ id }) => expect(table.has(id)).to.equal(false));
  });

  it('answers only ids it gave out, whatever number a peer sends', function () {
    const table = new ReplyTable();
    const id = table.add(entry(a));
    for (const bogus of [NaN, -1, 0, 1.5, Infinity, id + 1, Number.MAX_SAFE_INTEGER, '1', '__proto__', null, undefined]) {
      expect(table.settle(bogus, 'request', true, 'forged')).to.equal(false);
    }
    expect(table.settle(id, 'query', true, 'wrong kind')).to.equal(false);
    expect(table.settle(id, 'request', true, 'ok', b)).to.equal(false);
    expect(table.settle(id, 'request', true, 'ok', a)).to.equal(true);
    expect(table.has(id)).to.equal(false);
  });
});
