import { expect } from 'chai';
import fc from 'fast-check';
import { dispatch, query, spawn, type Ref } from 'nact';
import { startNode, type ClusterNode } from '../../src/cluster/node.js';
import { decode, encode } from '../../src/cluster/codec.js';
import { CallTimeoutError, EncodeError, ProtocolError, RemoteError, RunnerDownError } from '../../src/errors.js';

/** Sends values to an echo actor on another node over a real link and returns what came back. */
describe('Wire codec (through a real link)', function () {
  let a: ClusterNode;
  let b: ClusterNode;
  let echoOnB: Ref<{ value: unknown; sender: Ref<unknown> }>;

  before(async function () {
    a = await startNode({ name: 'a@127.0.0.10', port: 0, cookie: 'c', log: false });
    b = await startNode({ name: 'b@127.0.0.11', port: 0, cookie: 'c', log: false });
    const local = spawn(b.system, (_s: undefined, m: { value: unknown; sender: Ref<unknown> }) => {
      dispatch(m.sender, m.value);
      return undefined;
    }, 'echo');
    void local;
    echoOnB = a.remoteRef(b.name, 'echo');
  });

  after(async function () {
    await Promise.all([a.stop(), b.stop()]);
  });

  const roundTrip = <T>(value: T): Promise<T> =>
    query(echoOnB, (sender) => ({ value, sender }), 5000) as Promise<T>;

  it('round-trips Date, Map, Set, Buffer, Uint8Array, BigInt, nested and sparse values', async function () {
    const value = {
      date: new Date(1_700_000_000_123),
      map: new Map<unknown, unknown>([[1, 'one'], ['k', { deep: [1, 2] }], [true, null]]),
      set: new Set([1, 'x', 2.5]),
      buffer: Buffer.from('bytes'),
      bytes: new Uint8Array([0, 1, 255]),
      big: 12_345_678_901_234_567_890n,
      wide: 2n ** 80n,
      negative: -(2n ** 70n),
      float: 0.1,
      maxSafe: Number.MAX_SAFE_INTEGER,
      list: [undefined, null, 'a', [[]]],
      emptyObject: {},
      numericKeys: { '1': 'one' },
    };
    const back = await roundTrip(value);
    expect(back).to.deep.equal(value);
    expect(back.map).to.be.instanceOf(Map);
    expect(back.set).to.be.instanceOf(Set);
    expect(back.bytes).to.be.instanceOf(Uint8Array);
  });

  // -0 arrives as 0 (msgpack has one integer zero), as it does through JSON.
  it('round-trips arbitrary JSON-like values and Maps/Sets of them (property test)', async function () {
    this.timeout(20_000);
    const leaf = fc.oneof(fc.string(), fc.integer(), fc.double({ noNaN: true }).map((x) => (Object.is(x, -0) ? 0 : x)), fc.boolean(), fc.constant(null), fc.bigInt(), fc.date({ noInvalidDate: true }));
    const { tree } = fc.letrec((tie) => ({
      tree: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('tree'), { maxLength: 4 }), fc.dictionary(fc.string().filter((k) => k !== '__proto__'), tie('tree'), { maxKeys: 4, noNullPrototype: true }),
        fc.array(fc.tuple(leaf, tie('tree')), { maxLength: 3 }).map((entries) => new Map(entries)),
        fc.array(leaf, { maxLength: 3 }).map((items) => new Set(items))),
    }));
    await fc.assert(fc.asyncProperty(tree, async (value) => {
      expect(await roundTrip(value)).to.deep.equal(value);
    }), { numRuns: 150 });
  });

  it('keeps an error\'s class, message, code, cause and stack, marking remote frames', async function () {
    const original = Object.assign(new TypeError('bad input', { cause: new Error('root cause') }), { code: 'E_BAD', status: 400 });
    const back = await roundTrip(original);
    expect(back).to.be.instanceOf(TypeError);
    expect(back.message).to.equal('bad input');
    expect((back as unknown as { code: string }).code).to.equal('E_BAD');
    expect((back as unknown as { status: number }).status).to.equal(400);
    expect(back.cause).to.be.instanceOf(Error).with.property('message', 'root cause');
    expect(back.stack).to.match(/^TypeError: bad input\n\s+at \[a@127\.0\.0\.10:\d+\] /);
  });

  it('rebuilds flame errors as their own class and unknown classes as RemoteError with the remote name', async function () {
    class QuotaError extends Error {
      override name = 'QuotaError';
      code = 'E_QUOTA';
    }
    const [flame, custom] = await roundTrip([new RunnerDownError('runner gone', { details: { runner: 'r1' } }), new QuotaError('over quota')]);
    expect(flame).to.be.instanceOf(RunnerDownError);
    expect((flame as RunnerDownError).details).to.deep.equal({ runner: 'r1' });
    expect(custom).to.be.instanceOf(RemoteError);
    expect((custom as RemoteError).name).to.equal('QuotaError');
    expect((custom as RemoteError).code).to.equal('E_QUOTA');
    expect(String(custom)).to.equal('QuotaError: over quota');
    expect(new CallTimeoutError('x').code).to.equal('FLAME_ERR_CALL_TIMEOUT');
  });

  it('round-trips actor refs: a ref to the sender node becomes a local nact ref again', async function () {
    const collector: unknown[] = [];
    const local = spawn(a.system, (_s: undefined, m: unknown) => {
      collector.push(m);
      return undefined;
    }, 'local-target');
    const back = await roundTrip({ ref: local });
    expect(back.ref).to.not.equal(local);
    dispatch(back.ref, 'via decoded ref');
    for (let i = 0; i < 100 && collector.length === 0; i++) await new Promise((r) => setImmediate(r));
    expect(collector).to.deep.equal(['via decoded ref']);
  });

  it('does not let a message pollute prototypes', async function () {
    const hostile = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}');
    const back = await roundTrip(hostile);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    expect(Object.getPrototypeOf(back)).to.equal(Object.prototype);
  });

  it('refuses to encode a function, naming what to send instead', function () {
    expect(() => encode({ f: () => 1 })).to.throw(EncodeError, /functions cannot be sent/);
  });

  it('reports truncated or malformed input as ProtocolError', function () {
    const context = { peer: 'x', ref: () => null };
    expect(() => decode(Buffer.from([0x92, 0x01]), context)).to.throw(ProtocolError, /undecodable frame/);
    expect(() => decode(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]), context)).to.throw(ProtocolError);
  });
});
