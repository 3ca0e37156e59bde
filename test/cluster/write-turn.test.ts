import { expect } from 'chai';
import type { WebSocket } from 'ws';
import { encode } from '../../src/cluster/codec.js';
import { startNode, type ClusterNode } from '../../src/cluster/node.js';
import { Peer, type PeerHost } from '../../src/cluster/peer.js';
import { linkTrafficChannel, type LinkTrafficMessage } from '../../src/observability/diagnostics.js';
import { RecordingSocket, peerHost } from '../helpers/recording-socket.js';
import { waitFor } from '../helpers/wait.js';

function attach(peer: Peer, socket: RecordingSocket): void {
  peer.attach({ ws: socket as unknown as WebSocket, peerNode: peer.node, incarnation: 'x', maxPayload: 1 << 20, dialer: peer.node });
}

describe('WriteTurn (a node writes once per link at the end of a turn that read a burst)', function () {
  it('sends what a frame of several messages makes for another link in one frame, in order', async function () {
    const sockets = { in: new RecordingSocket(), out: new RecordingSocket() };
    let outbound: Peer | undefined;
    const host: PeerHost = peerHost({
      // Each request read on the inbound link is forwarded on the outbound one, and answered
      // on its own link a few microtasks later (as a promise settling would).
      receive: (from, message) => {
        const [, id] = message as [number, number];
        outbound!.send([3, id, 'forwarded', id]);
        void Promise.resolve().then(() => from.send([4, id, true, id]));
      },
    });
    const inbound = new Peer(host, 'in@127.0.0.2');
    outbound = new Peer(host, 'out@127.0.0.3');
    attach(inbound, sockets.in);
    attach(outbound, sockets.out);
    try {
      // Let the flushes that attaching schedules pass: both links are quiet, so a lone message
      // would leave at once.
      await new Promise((resolve) => setImmediate(resolve));
      sockets.in.emit('message', encode([[3, 1, 's', null], [3, 2, 's', null], [3, 3, 's', null]]), true);
      await waitFor(() => sockets.out.frames.flat().length === 3 && sockets.in.frames.flat().length === 3, 'the forwards and the answers', 2000);
      expect(sockets.out.frames).to.have.length(1);
      expect(sockets.out.frames[0]!.map((m) => (m as unknown[])[1])).to.deep.equal([1, 2, 3]);
      expect(sockets.in.frames).to.have.length(1);
      expect(sockets.in.frames[0]!.map((m) => (m as unknown[])[1])).to.deep.equal([1, 2, 3]);
    } finally {
      inbound.close(1000, 'test over');
      outbound.close(1000, 'test over');
    }
  });

  describe('across three nodes', function () {
    const nodes: ClusterNode[] = [];
    const start = async (name: string): Promise<ClusterNode> => {
      const node = await startNode({ name, port: 0, cookie: 'write-turn', log: false });
      nodes.push(node);
      return node;
    };

    afterEach(async function () {
      await Promise.all(nodes.splice(0).map((n) => n.stop()));
    });

    it('keeps each link in order and settles every request when a relay forwards bursts to another link', async function () {
      const [client, relay, echo] = [await start('client@127.0.0.31'), await start('relay@127.0.0.32'), await start('echo@127.0.0.33')];
      const arrived: number[] = [];
      echo.handle('echo', (n) => {
        arrived.push(n as number);
        return n;
      });
      relay.handle('relay', (n) => relay.request(echo.name, 'echo', n, { timeout: 10_000 }));
      const frames: LinkTrafficMessage[] = [];
      const count = (m: unknown): void => {
        const message = m as LinkTrafficMessage;
        if (message.node === relay.name && message.peer === echo.name && message.direction === 'out') frames.push(message);
      };
      linkTrafficChannel.subscribe(count);
      try {
        const sent: number[] = [];
        for (let burst = 0; burst < 3; burst++) {
          const answers = Array.from({ length: 100 }, (_, i) => {
            const n = burst * 100 + i;
            sent.push(n);
            return client.request(relay.name, 'relay', n, { timeout: 10_000 });
          });
          expect(await Promise.all(answers)).to.deep.equal(sent.slice(burst * 100));
        }
        expect(arrived).to.deep.equal(sent);
        const forwarded = frames.reduce((sum, f) => sum + f.messages, 0);
        expect(forwarded).to.equal(300);
        // A frame per burst read on the client's link (or a few: a burst may arrive in parts),
        // not one per request.
        expect(frames.length).to.be.below(30);
      } finally {
        linkTrafficChannel.unsubscribe(count);
      }
    });
  });
});
