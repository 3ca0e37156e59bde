import { expect } from 'chai';
import { WebSocket } from 'ws';
import { once } from 'node:events';
import { dispatch, query, spawn, type Ref } from 'nact';
import { startNode, type ClusterNode } from '../../src/cluster/node.js';
import { encode } from '../../src/cluster/codec.js';
import { AuthenticationError, PayloadTooLargeError } from '../../src/errors.js';
import type { LogLevel } from '../../src/log.js';
import { rawPeer } from '../helpers/raw-peer.js';
import { nextEvent, waitFor } from '../helpers/wait.js';

const COOKIE = 'right-cookie';

describe('ClusterNode security and bad input', function () {
  let server: ClusterNode;
  let logs: string[];
  let received: unknown[];
  const others: ClusterNode[] = [];

  beforeEach(async function () {
    logs = [];
    received = [];
    server = await startNode({
      name: 'server@127.0.0.6', port: 0, cookie: COOKIE, maxPayload: 64 * 1024, log: 'warn',
      logSink: (level: LogLevel, line: string) => logs.push(`${level} ${line}`),
    });
    spawn(server.system, (_s: undefined, msg: unknown) => {
      received.push(msg);
      return undefined;
    }, 'inbox');
  });

  afterEach(async function () {
    await Promise.all(others.splice(0).map((n) => n.stop()));
    await server.stop();
  });

  async function healthyPeer(): Promise<ClusterNode> {
    const node = await startNode({ name: `ok${others.length}@127.0.0.7`, port: 0, cookie: COOKIE, log: false });
    others.push(node);
    await node.connect(server.name);
    return node;
  }

  /** A batch that would deliver `value` to the inbox actor, as a legitimate node encodes it. */
  function inboxFrame(value: unknown): Buffer {
    return encode([[1, 'inbox', value, undefined]]);
  }

  it('refuses a node with the wrong cookie, logging the peer address, and tells the dialer why', async function () {
    const intruder = await startNode({ name: 'intruder@127.0.0.8', port: 0, cookie: 'wrong', log: false });
    others.push(intruder);
    const refused = nextEvent<[{ address: string; reason: string }]>(server, 'refused');
    const error = await intruder.connect(server.name).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(AuthenticationError);
    const [info] = await refused;
    expect(info.address).to.match(/^127\.0\.0\.8:\d+$/);
    expect(info.reason).to.equal('wrong cookie');
    expect(logs.join('\n')).to.match(/refused connection from 127\.0\.0\.8:\d+ \(claims intruder@127\.0\.0\.8:\d+\): wrong cookie/);
  });

  it('decodes nothing from a peer that fails the challenge, even a well-formed message', async function () {
    const peer = await rawPeer(server.name, 'wrong');
    const closed = await peer.closed;
    expect(closed.code).to.equal(4001);
    // A peer skipping the proof and sending a real message first gets the same treatment.
    const sneaky = await rawPeer(server.name, undefined);
    sneaky.ws.send(inboxFrame('should never arrive'));
    expect((await sneaky.closed).code).to.equal(4001);
    const friend = await healthyPeer();
    const viaFriend = friend.remoteRef(server.name, 'inbox');
    dispatch(viaFriend, 'marker');
    await waitFor(() => received.length > 0, 'the marker');
    expect(received).to.deep.equal(['marker']);
  });

  it('answers 401 to a WebSocket client without the handshake headers', async function () {
    const [, hostPort] = server.name.split('@');
    const ws = new WebSocket(`ws://${hostPort}/flame`);
    ws.on('error', () => {});
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number }];
    expect(res.statusCode).to.equal(401);
    ws.terminate();
  });

  it('refuses a dialer that expects another node at this address (421)', async function () {
    const stranger = await startNode({ name: 'stranger@127.0.0.8', port: 0, cookie: COOKIE, log: false });
    others.push(stranger);
    const port = server.address.port;
    const error = await stranger.connect(`someone-else@127.0.0.6:${port}`).then(() => undefined, (e: unknown) => e);
    expect(String(error)).to.match(/421/);
  });

  it('delivers a message from an authenticated raw peer (the abuse tests below are not vacuous)', async function () {
    const peer = await rawPeer(server.name, COOKIE);
    peer.ws.send(inboxFrame('hello'));
    await waitFor(() => received.length === 1, 'the message');
    expect(received).to.deep.equal(['hello']);
    peer.ws.terminate();
  });

  for (const [what, frame, pattern] of [
    ['a garbage frame', Buffer.from([0xc1, 0xff, 0x00, 0x13]), /undecodable frame|not a batch/],
    ['a frame that is not a batch', encode({ not: 'a batch' }), /not a batch/],
    ['an unknown message type', encode([[99, 'x']]), /unknown message type 99/],
    ['a text frame', 'hello', /text frame/],
  ] as const) {
    it(`closes only the link that sent ${what}, with a logged reason`, async function () {
      const friend = await healthyPeer();
      const peer = await rawPeer(server.name, COOKIE);
      peer.ws.send(frame);
      const closed = await peer.closed;
      expect(closed.code).to.equal(4003);
      expect(logs.join('\n')).to.match(pattern);
      const echoRef = spawn(server.system, (_s: undefined, m: { sender: Ref<string> }) => {
        dispatch(m.sender, 'still here');
        return undefined;
      });
      const parts = (echoRef as unknown as { path: { parts: string[] } }).path.parts;
      const answer = await query(friend.remoteRef<{ sender: Ref<string> }>(server.name, parts), (sender) => ({ sender }), 5000);
      expect(answer).to.equal('still here');
    });
  }

  it('closes a link that sends a frame over maxPayload (1009) and keeps the others', async function () {
    const friend = await healthyPeer();
    const peer = await rawPeer(server.name, COOKIE);
    peer.ws.send(inboxFrame('x'.repeat(100 * 1024)));
    const closed = await peer.closed;
    expect(closed.code).to.equal(1009);
    await waitFor(() => logs.some((l) => /Max payload size exceeded|maxPayload/i.test(l)), 'the logged reason');
    dispatch(friend.remoteRef(server.name, 'inbox'), 'after');
    await waitFor(() => received.includes('after'), 'a message on the healthy link');
    expect(received).to.deep.equal(['after']);
  });

  it('does not send a message larger than the peer accepts: the query rejects with PayloadTooLargeError', async function () {
    const friend = await healthyPeer();
    const ref = friend.remoteRef<{ blob: string; sender: Ref<unknown> }>(server.name, 'inbox');
    const error = await query(ref, (sender) => ({ blob: 'y'.repeat(100 * 1024), sender }), 5000).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(PayloadTooLargeError);
    expect(String((error as Error).message)).to.match(/exceeds the maxPayload/);
    dispatch(ref, { blob: 'small' } as never);
    await waitFor(() => received.length === 1, 'the small message');
    expect(friend.isConnected(server.name)).to.equal(true);
  });
});
