import { expect } from 'chai';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { dispatch, query, spawn, type Ref } from 'nact';
import { startNode, type ClusterNode } from '../../src/cluster/node.js';
import type { LogLevel } from '../../src/log.js';
import { rawPeer, rawTlsDial } from '../helpers/raw-peer.js';
import { nextEvent } from '../helpers/wait.js';

const COOKIE = 'tls-cookie';

/** A relay on `host`: each connection is forwarded to `to` by `forward`. */
async function relay(host: string, server: net.Server): Promise<{ address: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, host);
  await once(server, 'listening');
  return {
    address: `${host}:${(server.address() as net.AddressInfo).port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function pipeBothWays(a: net.Socket, b: net.Socket): void {
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
  a.pipe(b).pipe(a);
}

describe("ClusterNode links with tls: 'auto' (encrypted, no PKI)", function () {
  let server: ClusterNode;
  let logs: string[];
  const others: ClusterNode[] = [];
  const closers: (() => Promise<void>)[] = [];

  beforeEach(async function () {
    logs = [];
    server = await startNode({
      name: 'secure@127.0.0.50', port: 0, cookie: COOKIE, tls: 'auto', log: 'warn',
      logSink: (level: LogLevel, line: string) => logs.push(`${level} ${line}`),
    });
  });

  afterEach(async function () {
    await Promise.all(closers.splice(0).map((close) => close()));
    await Promise.all(others.splice(0).map((n) => n.stop()));
    await server.stop();
  });

  it('carries dispatch and query between two nodes, over TLS 1.3 with an ephemeral certificate', async function () {
    const client = await startNode({ name: 'client@127.0.0.51', port: 0, cookie: COOKIE, tls: 'auto', log: false });
    others.push(client);
    spawn(server.system, (_s: undefined, m: { value: unknown; sender: Ref<unknown> }) => {
      dispatch(m.sender, m.value);
      return undefined;
    }, 'echo');
    const echo = client.remoteRef<{ value: unknown; sender: Ref<unknown> }>(server.name, 'echo');
    expect(await query(echo, (sender) => ({ value: 'sealed', sender }), 10_000)).to.equal('sealed');
    expect([server.encrypted, client.encrypted]).to.deep.equal([true, true]);
    // What a peer sees of the endpoint: TLS 1.3 and a self-signed certificate made for this process.
    const socket = tls.connect({ host: '127.0.0.50', port: server.address.port, rejectUnauthorized: false });
    await once(socket, 'secureConnect');
    expect(socket.getProtocol()).to.equal('TLSv1.3');
    expect(socket.getPeerCertificate().subject.CN).to.equal('flame-actors ephemeral node');
    socket.destroy();
  });

  it('refuses a plaintext peer, logging why', async function () {
    const refused = nextEvent<[{ address: string; reason: string }]>(server, 'refused');
    const attempt = rawPeer(server.name, COOKIE).then(() => 'connected', () => 'failed');
    const [info] = await refused;
    expect(info.reason).to.match(/TLS handshake failed .*plaintext/);
    expect(info.address).to.match(/^127\.0\.0\.1:\d+$/);
    expect(await attempt).to.equal('failed');
    const plain = await startNode({ name: 'plain@127.0.0.52', port: 0, cookie: COOKIE, log: false });
    others.push(plain);
    expect(await plain.connect(server.name).then(() => undefined, (e: unknown) => e)).to.have.property('code', 'FLAME_ERR_CONNECT');
  });

  it('accepts a dialer whose proof is bound to its own session, directly and through a TCP relay (the relay works)', async function () {
    expect(await rawTlsDial(`127.0.0.50:${server.address.port}`, server.name, COOKIE)).to.deep.equal({ serverProven: true, outcome: 'accepted' });
    const tcp = await relay('127.0.0.53', net.createServer((client) => {
      pipeBothWays(client, net.connect({ host: '127.0.0.50', port: server.address.port }));
    }));
    closers.push(tcp.close);
    expect(await rawTlsDial(tcp.address, server.name, COOKIE)).to.deep.equal({ serverProven: true, outcome: 'accepted' });
  });

  it('does not let a man in the middle that terminates TLS on both sides complete the handshake', async function () {
    const { generate } = await import('selfsigned');
    const own = await generate([{ name: 'commonName', value: 'mitm' }], { keyType: 'ec', algorithm: 'sha256' });
    // It decrypts the dialer's TLS and re-encrypts towards the node, relaying every byte, proofs included.
    const mitm = await relay('127.0.0.54', tls.createServer({ key: own.private, cert: own.cert, minVersion: 'TLSv1.3' }, (client) => {
      pipeBothWays(client, tls.connect({ host: '127.0.0.50', port: server.address.port, rejectUnauthorized: false, minVersion: 'TLSv1.3' }));
    }));
    closers.push(mitm.close);
    const refused = nextEvent<[{ reason: string }]>(server, 'refused');
    const result = await rawTlsDial(mitm.address, server.name, COOKIE, 'victim@127.0.0.55');
    // The dialer sees the node's proof fail for its session; the node refuses the relayed proof.
    expect(result.serverProven).to.equal(false);
    expect(result.outcome).to.equal(4001);
    expect((await refused)[0].reason).to.equal('wrong cookie');
  });

  it('stays usable for honest nodes after refusing a relayed proof', async function () {
    const client = await startNode({ name: 'later@127.0.0.56', port: 0, cookie: COOKIE, tls: 'auto', log: false });
    others.push(client);
    server.handle('ping', () => 'pong');
    expect(await client.request(server.name, 'ping', null, { timeout: 10_000 })).to.equal('pong');
  });
});
