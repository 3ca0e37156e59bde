import { expect } from 'chai';
import { dispatch, spawn } from 'nact';
import dc from 'node:diagnostics_channel';
import { startNode, type ClusterNode } from '../../src/cluster/node.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import { CallTrace, CHANNELS, callChannel, publish, runnerUpChannel, type BootMessage, type CallMessage } from '../../src/observability/diagnostics.js';
import { moduleRef } from '../../src/flame/fn-ref.js';
import { startPool } from '../helpers/pools.js';
import { waitFor } from '../helpers/wait.js';
import type * as jobs from '../fixtures/jobs.js';
import type * as actors from '../fixtures/actors.js';
import type * as streamJobs from '../fixtures/stream-jobs.js';

const JOBS = new URL('../fixtures/jobs.js', import.meta.url);
const ACTORS = new URL('../fixtures/actors.js', import.meta.url);
const STREAMS = new URL('../fixtures/stream-jobs.js', import.meta.url);

type Event = [name: string, message: CallMessage];

/** Records every event of a tracing channel, and unsubscribes after the test. */
function recordTracing<M>(name: string, into: [string, M][]): () => void {
  const channel = dc.tracingChannel(name);
  const handlers = Object.fromEntries(['start', 'end', 'asyncStart', 'asyncEnd', 'error'].map((e) => [e, (m: unknown) => into.push([e, { ...(m as object) } as M])]));
  channel.subscribe(handlers as unknown as Parameters<typeof channel.subscribe>[0]);
  return () => channel.unsubscribe(handlers as unknown as Parameters<typeof channel.unsubscribe>[0]);
}

function record(name: string, into: unknown[]): () => void {
  const listener = (m: unknown) => into.push(m);
  dc.subscribe(name, listener);
  return () => dc.unsubscribe(name, listener);
}

describe('Diagnostics channels', function () {
  this.timeout(60_000);
  const cleanups: (() => void | Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('traces a call on flame-actors:call: start, end, asyncStart, asyncEnd with pool, runner, function, waitMs and runMs', async () => {
    const events: Event[] = [];
    cleanups.push(recordTracing(CHANNELS.call, events));
    const pool = await startPool({ name: 'dc-call', max: 1 });
    const add = (a: number, b: number) => a + b;
    const sum = await pool.call(add, [1, 2]);
    expect(sum).to.equal(3);
    expect(events.map(([e]) => e)).to.deep.equal(['start', 'end', 'asyncStart', 'asyncEnd']);
    const [, start] = events[0]!;
    expect(start).to.include({ pool: 'dc-call', kind: 'call', function: 'add' });
    expect(start.runner).to.equal(undefined);
    const [, done] = events[3]!;
    expect(done.runner).to.equal(pool.status().runners[0]!.id);
    expect(done.node).to.equal(pool.status().runners[0]!.node);
    expect(done.waitMs).to.be.a('number').and.at.least(0);
    expect(done.runMs).to.be.a('number').and.above(0);
    expect(done.result).to.equal(3);
    expect(done.code).to.equal(undefined);
  });

  it('publishes error with the error code for a failing call, and names a moduleRef module#export', async () => {
    const events: Event[] = [];
    cleanups.push(recordTracing(CHANNELS.call, events));
    const pool = await startPool({ name: 'dc-fail', max: 1 });
    const error = await pool.call(function boom() {
      throw Object.assign(new Error('boom'), { code: 'E_BOOM' });
    }).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(Error);
    expect(events.map(([e]) => e)).to.deep.equal(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
    const [, failed] = events[2]!;
    expect(failed).to.include({ function: 'boom', code: 'E_BOOM' });
    expect(failed.error).to.equal(error);
    expect(failed.runner).to.be.a('string');
    events.length = 0;
    expect(await pool.call(moduleRef<typeof jobs.add>(JOBS, 'add'), [2, 3])).to.equal(5);
    expect(events[0]![1].function).to.equal(`${JOBS.href}#add`);
  });

  it('traces placeChild, track and each stream from pool.stream() to its end, with its kind, runner and outcome', async () => {
    const events: Event[] = [];
    cleanups.push(recordTracing(CHANNELS.call, events));
    const pool = await startPool({ name: 'dc-kinds', max: 1, maxConcurrency: 10 });
    const ref = await pool.placeChild(moduleRef<typeof actors.counter>(ACTORS, 'counter'), [0]);
    const handle = await pool.track(function twice(n: number) {
      return n * 2;
    }, [21]);
    expect(handle.value).to.equal(42);
    await handle.release();
    const items: number[] = [];
    for await (const item of pool.stream(moduleRef<typeof streamJobs.count>(STREAMS, 'count'), [3])) items.push(item);
    expect(items).to.deep.equal([0, 1, 2]);
    // A stream its reader leaves early ended as asked: a success.
    for await (const item of pool.stream(moduleRef<typeof streamJobs.count>(STREAMS, 'count'), [1000])) if (item === 1) break;
    const failure = await (async () => {
      for await (const item of pool.stream(moduleRef<typeof streamJobs.failsAfter>(STREAMS, 'failsAfter'), [2])) expect(item).to.be.below(2);
    })().then(() => undefined, (e: unknown) => e);
    expect(failure).to.have.property('code', 'E_STREAM_BROKE');

    const runner = pool.status().runners[0]!;
    const done = events.filter(([e]) => e === 'asyncEnd').map(([, m]) => m);
    expect(done.map((m) => m.kind)).to.deep.equal(['place', 'track', 'stream', 'stream', 'stream']);
    expect(done.map((m) => m.function)).to.deep.equal([`${ACTORS.href}#counter`, 'twice', `${STREAMS.href}#count`, `${STREAMS.href}#count`, `${STREAMS.href}#failsAfter`]);
    for (const m of done) expect(m).to.include({ pool: 'dc-kinds', runner: runner.id, node: runner.node });
    for (const m of done) expect(m.runMs).to.be.a('number').and.at.least(0);
    expect(done[0]!.result).to.equal(ref);
    expect(done.map((m) => m.code)).to.deep.equal([undefined, undefined, undefined, undefined, 'E_STREAM_BROKE']);
    expect(events.filter(([e]) => e === 'error').map(([, m]) => m.error)).to.deep.equal([failure]);
    // Each context: start and end at the method's call, asyncStart and asyncEnd at its end.
    expect(events.filter(([e]) => e === 'start')).to.have.length(5);
    expect(events.filter(([e]) => e === 'end')).to.have.length(5);
  });

  it('traces boots on flame-actors:boot and reports runner:up and runner:down with the node and reason', async () => {
    const boots: [string, BootMessage][] = [];
    const ups: unknown[] = [];
    const downs: unknown[] = [];
    cleanups.push(recordTracing(CHANNELS.boot, boots), record(CHANNELS.runnerUp, ups), record(CHANNELS.runnerDown, downs));
    const pool = await startPool({ name: 'dc-boot', min: 1, max: 1 });
    const runner = pool.status().runners[0]!;
    expect(boots.map(([e]) => e)).to.deep.equal(['start', 'end', 'asyncStart', 'asyncEnd']);
    expect(boots[0]![1]).to.include({ pool: 'dc-boot', runner: runner.id, backend: 'process' });
    expect(boots[3]![1]).to.include({ node: runner.node });
    expect(boots[3]![1].bootMs).to.be.above(0);
    expect(ups).to.have.length(1);
    expect(ups[0]).to.include({ pool: 'dc-boot', runner: runner.id, node: runner.node });
    await pool.stop();
    expect(downs).to.have.length(1);
    expect(downs[0]).to.include({ pool: 'dc-boot', runner: runner.id, node: runner.node });
    expect((downs[0] as { reason: string }).reason).to.be.a('string').and.not.empty;
  });

  it('reports link:up, link:traffic and link:down (with the reason) for a link between two nodes', async () => {
    const ups: unknown[] = [];
    const downs: unknown[] = [];
    const traffic: { node: string; direction: string; bytes: number; messages: number }[] = [];
    cleanups.push(record(CHANNELS.linkUp, ups), record(CHANNELS.linkDown, downs), record(CHANNELS.linkTraffic, traffic as unknown[]));
    const a = await startNode({ name: 'dc-a@127.0.0.61', port: 0, cookie: 'dc', log: false });
    const b = await startNode({ name: 'dc-b@127.0.0.62', port: 0, cookie: 'dc', log: false });
    cleanups.push(() => a.stop(), () => b.stop());
    await a.connect(b.name);
    await a.request(b.name, 'no-such-service', {}, { timeout: 5000 }).catch(() => {});
    expect(ups).to.deep.include({ node: a.name, peer: b.name });
    const out = traffic.filter((t) => t.node === a.name && t.direction === 'out');
    const inbound = traffic.filter((t) => t.node === b.name && t.direction === 'in');
    expect(out.reduce((s, t) => s + t.messages, 0)).to.be.at.least(1);
    expect(inbound.reduce((s, t) => s + t.bytes, 0)).to.equal(out.reduce((s, t) => s + t.bytes, 0));
    await b.stop();
    await waitFor(() => downs.some((d) => (d as { node: string }).node === a.name), 'link:down on a', 15_000);
    const down = downs.find((d) => (d as { node: string }).node === a.name) as { peer: string; reason: string; code: string };
    expect(down.peer).to.equal(b.name);
    expect(down.reason).to.be.a('string').and.not.empty;
    expect(down.code).to.match(/^FLAME_ERR_/);
  });

  it('counts every message of a one-way stream in link:traffic, on both ends, though they travel as runs', async () => {
    const traffic: { node: string; direction: string; messages: number }[] = [];
    cleanups.push(record(CHANNELS.linkTraffic, traffic as unknown[]));
    const a = await startNode({ name: 'dc-e@127.0.0.65', port: 0, cookie: 'dc', log: false });
    const b = await startNode({ name: 'dc-f@127.0.0.66', port: 0, cookie: 'dc', log: false });
    cleanups.push(() => a.stop(), () => b.stop());
    await a.connect(b.name);
    let received = 0;
    spawn(b.system, (_s: undefined) => {
      received++;
      return undefined;
    }, 'tally');
    const before = traffic.length;
    const tally = a.remoteRef<number>(b.name, 'tally');
    for (let i = 0; i < 50; i++) dispatch(tally, i);
    await waitFor(() => received === 50, '50 messages');
    const sum = (node: string, direction: string) => traffic.slice(before).filter((t) => t.node === node && t.direction === direction).reduce((s, t) => s + t.messages, 0);
    expect(sum(a.name, 'out')).to.equal(50);
    expect(sum(b.name, 'in')).to.equal(50);
  });

  it('reports a refused handshake (wrong cookie) on handshake:refused', async () => {
    const refused: unknown[] = [];
    cleanups.push(record(CHANNELS.handshakeRefused, refused));
    const a = await startNode({ name: 'dc-c@127.0.0.63', port: 0, cookie: 'right', log: false });
    const b: ClusterNode = await startNode({ name: 'dc-d@127.0.0.64', port: 0, cookie: 'wrong', log: false });
    cleanups.push(() => a.stop(), () => b.stop());
    await b.connect(a.name).catch(() => {});
    await waitFor(() => refused.length > 0, 'handshake:refused', 10_000);
    expect(refused[0]).to.include({ node: a.name, peer: b.name });
    expect((refused[0] as { address: string }).address).to.include('127.0.0.64');
  });

  it('reports queue overload on pool:overload when maxQueue refuses a caller', async () => {
    const overloads: unknown[] = [];
    cleanups.push(record(CHANNELS.queueOverload, overloads));
    const pool = await startPool({ name: 'dc-overload', min: 1, max: 1, maxConcurrency: 1, maxQueue: 0 });
    const slow = pool.call(() => new Promise((r) => setTimeout(r, 300)));
    const refused = await pool.call(() => 1).then(() => undefined, (e: unknown) => e);
    await slow;
    expect((refused as { code?: string }).code).to.equal('FLAME_ERR_POOL_OVERLOADED');
    expect(overloads).to.deep.equal([{ pool: 'dc-overload', queued: 0, maxQueue: 0 }]);
  });

  it('publishes a call that settles within its start after end, in the order tracePromise does', async () => {
    const events: Event[] = [];
    cleanups.push(recordTracing('flame-actors:call', events));
    const failure = Object.assign(new Error('nope'), { code: 'E_NOPE' });
    const trace = new CallTrace('p', 'call', function double() {});
    const promise = trace.run((t) => {
      t.attempt('p-1', 'p-1@127.0.0.1', 0, 1);
      t.settled(false, failure);
      return Promise.reject(failure);
    });
    await promise.catch(() => {});
    expect(events.map(([e]) => e)).to.deep.equal(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
    expect(events[4]![1]).to.include({ pool: 'p', function: 'double', runner: 'p-1', code: 'E_NOPE', error: failure });
  });

  it('runs a traced call with the stores bound to flame-actors:call start, as tracePromise does', async () => {
    const events: Event[] = [];
    cleanups.push(recordTracing('flame-actors:call', events));
    const store = new AsyncLocalStorage<{ span: string }>();
    callChannel.start.bindStore(store, (m) => ({ span: `span of ${m.function}` }));
    cleanups.push(() => void callChannel.start.unbindStore(store));
    const seen: ({ span: string } | undefined)[] = [];
    const trace = new CallTrace('p', 'call', function work() {});
    const result = await trace.run((t) => {
      seen.push(store.getStore());
      return Promise.resolve(2).then((v) => {
        seen.push(store.getStore()); // what the call awaits keeps the store
        t.settled(true, v);
        return v;
      });
    });
    expect(result).to.equal(2);
    expect(seen).to.deep.equal([{ span: 'span of work' }, { span: 'span of work' }]);
    expect(store.getStore()).to.equal(undefined);
    expect(events.map(([e]) => e)).to.deep.equal(['start', 'end', 'asyncStart', 'asyncEnd']);
    expect(events[3]![1]).to.include({ result: 2 });
  });

  it('builds no message when nobody listens', async () => {
    let built = 0;
    publish(runnerUpChannel, () => ++built);
    expect(built).to.equal(0);
    const listener = () => {};
    dc.subscribe(CHANNELS.runnerUp, listener);
    publish(runnerUpChannel, () => ++built);
    dc.unsubscribe(CHANNELS.runnerUp, listener);
    expect(built).to.equal(1);
  });
});
