import { expect } from 'chai';
import { dispatch, query, spawn, type Ref } from 'nact';
import { startNode, type ClusterNode } from '../../src/cluster/node.js';
import { encode } from '../../src/cluster/codec.js';
import { RemoteError } from '../../src/errors.js';
import type { LogLevel } from '../../src/log.js';
import { rawPeer } from '../helpers/raw-peer.js';
import { waitFor } from '../helpers/wait.js';

const COOKIE = 'hostile-cookie';
const BIG_REPLY = 'r'.repeat(256 * 1024);

/**
 * An authenticated peer (a buggy or compromised runner) sends frames that are valid msgpack
 * but wrong: the node must close that link at most, never crash, and keep its other links.
 */
describe('ClusterNode facing a hostile authenticated peer', function () {
  let server: ClusterNode;
  let friend: ClusterNode;
  let logs: string[];
  let served: number;

  beforeEach(async function () {
    logs = [];
    served = 0;
    server = await startNode({
      name: 'target@127.0.0.12', port: 0, cookie: COOKIE, log: 'debug',
      logSink: (level: LogLevel, line: string) => logs.push(`${level} ${line}`),
    });
    // Answers over 20 timer turns, so that replies leave in several frames and some wait in the queue.
    server.handle('big', (payload) => new Promise((resolve) => {
      setTimeout(() => {
        served++;
        resolve(BIG_REPLY);
      }, Number(payload) % 20);
    }));
    spawn(server.system, (_s: undefined, m: { value: unknown; sender: Ref<unknown> }) => {
      dispatch(m.sender, m.value);
      return undefined;
    }, 'echo');
    friend = await startNode({ name: 'friend@127.0.0.13', port: 0, cookie: COOKIE, log: false });
    await friend.connect(server.name);
  });

  afterEach(async function () {
    await Promise.all([friend.stop(), server.stop()]);
  });

  /** The node still serves its other links: a query over the healthy link is answered. */
  async function stillServes(): Promise<void> {
    const echo = friend.remoteRef<{ value: unknown; sender: Ref<unknown> }>(server.name, 'echo');
    expect(await query(echo, (sender) => ({ value: 'alive', sender }), 10_000)).to.equal('alive');
    expect(server.stopped).to.equal(false);
  }

  it('survives a peer that stops reading while 200 large replies are queued for it, then disconnects', async function () {
    const peer = await rawPeer(server.name, COOKIE, 'reader@127.0.0.14');
    peer.ws.send(encode(Array.from({ length: 200 }, (_, i) => [3, i + 1, 'big', i])));
    peer.ws.pause();
    await waitFor(() => served === 200, 'the 200 requests to be served');
    peer.ws.terminate();
    // Replies still queued when the link dies are dropped (how many depends on what the socket took).
    await waitFor(() => !server.isConnected('reader@127.0.0.14'), 'the reader to be seen down');
    await stillServes();
  });

  it('drops, counts and logs the replies queued for a link that its own frame closed', async function () {
    // 50 requests to a service that does not exist (answered at once: one reply leaves, 49 wait
    // for the next turn), then an unknown message type, which closes the link in the same turn.
    const frame = encode([...Array.from({ length: 50 }, () => [3, 1, 'svc', null]), [99]]);
    expect(frame.length).to.be.below(450);
    const peer = await rawPeer(server.name, COOKIE, 'closer@127.0.0.19');
    peer.ws.send(frame);
    expect((await peer.closed).code).to.equal(4003);
    await waitFor(() => server.stats().droppedReplies > 0, 'the dropped replies to be counted');
    expect(logs.some((l) => /^debug .*reply to "svc" #1 of closer@127\.0\.0\.19 dropped/.test(l))).to.equal(true);
    await stillServes();
  });

  for (const [what, frame, pattern] of [
    ['a BigInt message type', () => encode([[1n]]), /unknown message type 1n/],
    ['a 64-bit dispatch target', () => encode([[1, 2n ** 63n, 'x', null], [99]]), /unknown message type 99/],
    ['a dispatch run whose messages are not an array', () => encode([[7, 'echo', 'x']]), /malformed dispatch run/],
    ['a dispatch run to a numeric target', () => encode([[7, 12, ['x']]]), /malformed dispatch run/],
    ['a message type of 60 two-byte characters', () => encode([['\u00e9'.repeat(60)]]), /unknown message type/],
    // Built by hand: msgpackr's own encoder does not go that deep. [[ [[[...1]]] ]]: one-element arrays.
    ['a message type nested 3,500 levels deep', () => Buffer.concat([Buffer.alloc(3502, 0x91), Buffer.from([0x01])]), /unknown message type/],
    ['an error named after an Object.prototype method in a reply', () => encode([[4, 77, false, Object.assign(new Error('x'), { name: 'toString' })]]), undefined],
  ] as const) {
    it(`handles ${what} without crashing, closing only that link`, async function () {
      const peer = await rawPeer(server.name, COOKIE);
      peer.ws.send(frame());
      if (pattern) {
        const closed = await peer.closed;
        expect(closed.code).to.equal(4003);
        expect(Buffer.byteLength(closed.reason)).to.be.at.most(123);
        expect(logs.join('\n')).to.match(pattern);
      } else {
        // The link that carried it still works: a request on it is served.
        peer.ws.send(encode([[3, 1, 'big', 0]]));
        await waitFor(() => served === 1, 'the request on the same link');
        peer.ws.terminate();
      }
      await stillServes();
    });
  }

  it('refuses to let a peer stop its actor system', async function () {
    const peer = await rawPeer(server.name, COOKIE);
    peer.ws.send(encode([[2, ['s']], [2, '']]));
    peer.ws.send(encode([[3, 1, 'big', 0]]));
    await waitFor(() => served === 1, 'the request after the stops');
    await stillServes();
    peer.ws.terminate();
  });

  for (const name of ['toString', 'valueOf', 'hasOwnProperty', 'constructor', '__proto__']) {
    it(`rebuilds a remote error named "${name}" as a RemoteError and keeps the link`, async function () {
      const echo = friend.remoteRef<{ value: unknown; sender: Ref<unknown> }>(server.name, 'echo');
      const original = new Error('odd name');
      Object.defineProperty(original, 'name', { value: name, enumerable: false });
      const back = await query(echo, (sender) => ({ value: original, sender }), 10_000);
      expect(back).to.be.instanceOf(RemoteError);
      expect((back as RemoteError).name).to.equal(name);
      expect((back as RemoteError).message).to.equal('odd name');
      expect(friend.isConnected(server.name)).to.equal(true);
    });
  }
});
