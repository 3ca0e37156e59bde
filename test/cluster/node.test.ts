import { expect } from 'chai';
import { dispatch, query, spawn, stop, type Ref } from 'nact';
import { startNode, type ClusterNode } from '../../src/cluster/node.js';
import { ActorNotFoundError, NodeDownError, OverloadedError, QueryTimeoutError } from '../../src/errors.js';
import { forkChild, type ChildNode } from '../helpers/processes.js';
import { nextEvent, settlesWithin, waitFor } from '../helpers/wait.js';
import type { CounterMsg, EchoMsg, RelayMsg } from '../fixtures/actors.js';

const COOKIE = 'test-cookie';
const ACTORS = new URL('../fixtures/actors.js', import.meta.url).href;
const NODE_PROCESS = new URL('../fixtures/node-process.js', import.meta.url);

function childNode(host: string, env: Record<string, string> = {}): ChildNode {
  return forkChild(NODE_PROCESS, { FLAME_NODE_NAME: `child@${host}`, FLAME_PORT: '0', FLAME_COOKIE: COOKIE, ...env });
}

describe('ClusterNode across two OS processes', function () {
  let parent: ClusterNode;
  let child: ChildNode;
  let childName: string;

  beforeEach(async function () {
    parent = await startNode({ name: 'parent@127.0.0.2', port: 0, cookie: COOKIE, log: false });
    child = childNode('127.0.0.3');
    childName = String((await child.ready).node);
  });

  afterEach(async function () {
    await parent.stop();
  });

  it('names nodes name@host:port, each bound to its own loopback address', function () {
    expect(parent.name).to.match(/^parent@127\.0\.0\.2:\d+$/);
    expect(childName).to.match(/^child@127\.0\.0\.3:\d+$/);
  });

  it('spawns an actor on the peer from a module ref and drives it with nact dispatch and query', async function () {
    const counter = await parent.spawnRemote<CounterMsg>(childName, { module: ACTORS, export: 'counter' }, [10]);
    dispatch(counter, { type: 'inc', by: 5 });
    dispatch(counter, { type: 'inc' });
    const value = await query(counter, (sender: Ref<number>) => ({ type: 'get', sender }), 5000);
    expect(value).to.equal(16);
  });

  it('lets the peer query an actor of the parent (both ways over one link)', async function () {
    echo(parent);
    const answer = await child.command({ cmd: 'query', node: parent.name, path: 'parent-echo', value: { hello: 'from child' } });
    expect(answer).to.deep.include({ ok: true, result: { hello: 'from child' } });
    expect(parent.connectedNodes()).to.deep.equal([childName]);
  });

  it('carries refs inside messages: a remote actor queries a parent actor and answers a parent-side ref', async function () {
    const parentEcho = echo(parent);
    const collector = collect(parent);
    const childRelay = await parent.spawnRemote<RelayMsg>(childName, { module: ACTORS, export: 'relay' });
    dispatch(childRelay, { to: parentEcho, value: [1, 'two'], replyTo: collector.ref });
    await waitFor(() => collector.received.length === 1, 'the relayed answer');
    expect(collector.received[0]).to.deep.equal([1, 'two']);
  });

  it('rejects a query to an actor that does not exist on the peer at once, not after its timeout', async function () {
    const ghost = parent.remoteRef<EchoMsg>(childName, 'no-such-actor');
    const { error, ms } = await settlesWithin(query(ghost, (sender) => ({ value: 1, sender }), 20_000), 5000, 'query');
    expect(error).to.be.instanceOf(ActorNotFoundError);
    expect(String(error)).to.match(/Actor stopped or never existed/);
    expect(ms).to.be.below(5000);
  });

  it('rejects a query that gets no answer with QueryTimeoutError after its timeout', async function () {
    const sink = parent.remoteRef<EchoMsg>(childName, 'sink');
    const { error } = await settlesWithin(query(sink, (sender) => ({ value: 1, sender }), 300), 5000, 'query');
    expect(error).to.be.instanceOf(QueryTimeoutError);
    expect((error as QueryTimeoutError).code).to.equal('FLAME_ERR_QUERY_TIMEOUT');
  });

  it('stops a remote actor with nact stop', async function () {
    const counter = await parent.spawnRemote<CounterMsg>(childName, { module: ACTORS, export: 'counter' });
    stop(counter);
    const { error } = await settlesWithin(query(counter, (sender: Ref<number>) => ({ type: 'get', sender }), 5000), 6000, 'query');
    expect(String(error)).to.match(/Actor stopped or never existed/);
  });

  it('detects a SIGKILLed peer as down and rejects its pending queries with NodeDownError at once', async function () {
    await parent.connect(childName);
    const sink = parent.remoteRef<EchoMsg>(childName, 'sink');
    const settled = settlesWithin(query(sink, (sender) => ({ value: 1, sender }), 30_000), 5000, 'pending query');
    const down = nextEvent(parent, 'nodedown', 5000);
    await child.kill('SIGKILL');
    const { error, ms } = await settled;
    expect(error).to.be.instanceOf(NodeDownError);
    expect(ms).to.be.below(parent.heartbeatTimeout);
    const [node] = await down;
    expect(node).to.equal(childName);
  });

  it('detects a frozen peer (SIGSTOP, socket still open) through missed heartbeats', async function () {
    await parent.stop();
    parent = await startNode({ name: 'parent@127.0.0.2', port: 0, cookie: COOKIE, log: false, heartbeatInterval: 100, heartbeatTimeout: 400 });
    await parent.connect(childName);
    const sink = parent.remoteRef<EchoMsg>(childName, 'sink');
    const pending = query(sink, (sender) => ({ value: 1, sender }), 30_000);
    child.process.kill('SIGSTOP');
    const { error, ms } = await settlesWithin(pending, 5000, 'pending query');
    expect(error).to.be.instanceOf(NodeDownError);
    expect((error as Error).message).to.match(/no heartbeat/);
    expect(ms).to.be.within(300, 2000);
  });

  it('reports a dispatch to a down node instead of dropping it silently', async function () {
    const counter = await parent.spawnRemote<CounterMsg>(childName, { module: ACTORS, export: 'counter' });
    await child.kill('SIGKILL');
    await waitFor(() => !parent.isConnected(childName), 'the child to be seen down');
    const reported = nextEvent<[{ target: string; reason: Error }]>(parent, 'undeliverable', 5000);
    dispatch(counter, { type: 'inc' });
    const [info] = await reported;
    expect(info.target).to.contain(childName);
    expect(info.reason).to.be.instanceOf(NodeDownError);
  });

  it('tells monitors when the peer goes down', async function () {
    await parent.connect(childName);
    const reason = new Promise<Error>((resolve) => parent.monitor(childName, resolve));
    await child.kill('SIGKILL');
    expect(await reason).to.be.instanceOf(NodeDownError);
  });
});

describe('ClusterNode links', function () {
  const nodes: ClusterNode[] = [];
  const start = async (name: string, extra: Parameters<typeof startNode>[0] = {}) => {
    const node = await startNode({ name, port: 0, cookie: COOKIE, log: false, ...extra });
    nodes.push(node);
    return node;
  };
  afterEach(async function () {
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
  });

  it('keeps exactly one link when both nodes dial each other at the same time', async function () {
    const a = await start('a@127.0.0.4');
    const b = await start('b@127.0.0.5');
    await Promise.all([a.connect(b.name), b.connect(a.name)]);
    await waitFor(() => a.isConnected(b.name) && b.isConnected(a.name), 'both sides up');
    const echoOnA = echo(a);
    const viaB = b.remoteRef<EchoMsg>(a.name, (echoOnA as unknown as { path: { parts: string[] } }).path.parts);
    expect(await query(viaB, (sender) => ({ value: 'ok', sender }), 5000)).to.equal('ok');
    expect(a.connectedNodes()).to.have.length(1);
    expect(b.connectedNodes()).to.have.length(1);
  });

  it('sends the messages of one turn in order, and a burst far larger than one frame', async function () {
    const a = await start('a@127.0.0.4');
    const b = await start('b@127.0.0.5');
    const collector = collect(b);
    const remote = a.remoteRef<unknown>(b.name, (collector.ref as unknown as { path: { parts: string[] } }).path.parts);
    for (let i = 0; i < 20_000; i++) dispatch(remote, i);
    await waitFor(() => collector.received.length === 20_000, '20,000 messages', 20_000);
    expect(collector.received.every((v, i) => v === i)).to.equal(true);
  });

  it('keeps each actor\'s one-way messages in order when streams to two actors and queries interleave', async function () {
    const a = await start('a@127.0.0.4');
    const b = await start('b@127.0.0.5');
    const first = collect(b);
    const second = collect(b);
    const echoOnB = echo(b);
    const path = (ref: unknown) => (ref as { path: { parts: string[] } }).path.parts;
    const toFirst = a.remoteRef<unknown>(b.name, path(first.ref));
    const toSecond = a.remoteRef<unknown>(b.name, path(second.ref));
    const viaA = a.remoteRef<EchoMsg>(b.name, path(echoOnB));
    const answers: Promise<unknown>[] = [];
    for (let i = 0; i < 3000; i++) {
      dispatch(i % 7 < 4 ? toFirst : toSecond, i);
      if (i % 500 === 0) answers.push(query(viaA, (sender) => ({ value: i, sender }), 10_000));
    }
    expect(await Promise.all(answers)).to.deep.equal([0, 500, 1000, 1500, 2000, 2500]);
    await waitFor(() => first.received.length + second.received.length === 3000, '3,000 messages', 20_000);
    const all = Array.from({ length: 3000 }, (_, i) => i);
    expect(first.received).to.deep.equal(all.filter((i) => i % 7 < 4));
    expect(second.received).to.deep.equal(all.filter((i) => i % 7 >= 4));
  });

  it('reports every one-way message to an actor that does not exist as undeliverable', async function () {
    const a = await start('a@127.0.0.4');
    const b = await start('b@127.0.0.5');
    await a.connect(b.name);
    const reported: string[] = [];
    b.on('undeliverable', ({ target }) => reported.push(target));
    const missing = a.remoteRef<number>(b.name, 'nobody-here');
    for (let i = 0; i < 5; i++) dispatch(missing, i);
    await waitFor(() => reported.length === 5, 'five undeliverable reports');
    expect(reported).to.deep.equal(Array.from({ length: 5 }, () => `${b.name}/nobody-here`));
  });

  it('fails sends with OverloadedError once maxQueuedMessages are waiting, and whenWritable resolves later', async function () {
    const a = await start('a@127.0.0.4', { maxQueuedMessages: 100 });
    const b = await start('b@127.0.0.5');
    await a.connect(b.name);
    const collector = collect(b);
    const remote = a.remoteRef<unknown>(b.name, (collector.ref as unknown as { path: { parts: string[] } }).path.parts);
    for (let i = 0; i < 100; i++) dispatch(remote, i);
    expect(() => dispatch(remote, 100)).to.throw(OverloadedError, /await whenWritable/);
    await a.whenWritable(b.name);
    dispatch(remote, 100);
    await waitFor(() => collector.received.length === 101, 'the queued messages');
  });

  it('works over TLS (wss) with a certificate carrying the IP SAN', async function () {
    const { generate } = await import('selfsigned');
    const pems = await generate([{ name: 'commonName', value: 'flame-test' }], {
      keySize: 2048,
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.4' }, { type: 7, ip: '127.0.0.5' }] }],
    } as Parameters<typeof generate>[1]);
    const tls = { key: pems.private, cert: pems.cert, ca: pems.cert };
    const a = await start('a@127.0.0.4', { tls });
    const b = await start('b@127.0.0.5', { tls });
    const echoOnB = echo(b);
    const ref = a.remoteRef<EchoMsg>(b.name, (echoOnB as unknown as { path: { parts: string[] } }).path.parts);
    expect(await query(ref, (sender) => ({ value: 'secure', sender }), 5000)).to.equal('secure');
  });

  it('refuses to connect over TLS to a node whose certificate it does not trust', async function () {
    const { generate } = await import('selfsigned');
    const opts = { keySize: 2048, extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.5' }, { type: 7, ip: '127.0.0.4' }] }] } as Parameters<typeof generate>[1];
    const one = await generate([{ name: 'commonName', value: 'one' }], opts);
    const two = await generate([{ name: 'commonName', value: 'two' }], opts);
    const a = await start('a@127.0.0.4', { tls: { key: one.private, cert: one.cert, ca: one.cert } });
    const b = await start('b@127.0.0.5', { tls: { key: two.private, cert: two.cert, ca: two.cert } });
    const error = await a.connect(b.name).then(() => undefined, (e: unknown) => e);
    expect(error).to.have.property('code', 'FLAME_ERR_CONNECT');
  });
});

let collectors = 0;
/** A local actor that records what it receives. */
function collect(node: ClusterNode): { ref: Ref<unknown>; received: unknown[] } {
  const received: unknown[] = [];
  const ref = spawn(node.system, (_s: undefined, msg: unknown) => {
    received.push(msg);
    return undefined;
  }, `collector-${++collectors}`);
  return { ref, received };
}

function echo(node: ClusterNode): Ref<EchoMsg> {
  const name = node.name.startsWith('parent@') ? 'parent-echo' : `echo-${++collectors}`;
  return spawn(node.system, (_s: undefined, msg: EchoMsg) => {
    dispatch(msg.sender, msg.value);
    return undefined;
  }, name);
}

describe('ClusterNode with an unreachable peer', function () {
  it('rejects a query to a node that cannot be reached with NodeDownError, at once', async function () {
    const node = await startNode({ name: 'lonely@127.0.0.35', port: 0, cookie: COOKIE, log: false });
    try {
      const ghost = node.remoteRef<EchoMsg>('ghost@127.0.0.36:9', 'echo');
      const { error, ms } = await settlesWithin(query(ghost, (sender) => ({ value: 1, sender }), 20_000), 5000, 'query');
      expect(error).to.be.instanceOf(NodeDownError);
      expect((error as Error).message).to.match(/node ghost@127\.0\.0\.36:9 is unreachable: cannot connect/);
      expect(ms).to.be.below(2000);
      const connectError = await node.connect('ghost@127.0.0.36:9').then(() => undefined, (e: unknown) => e);
      expect(connectError).to.have.property('code', 'FLAME_ERR_CONNECT');
    } finally {
      await node.stop();
    }
  });
});
