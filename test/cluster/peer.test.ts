import { expect } from 'chai';
import type { WebSocket } from 'ws';
import { encode } from '../../src/cluster/codec.js';
import { Peer, type PeerHost } from '../../src/cluster/peer.js';
import { EncodeError } from '../../src/errors.js';
import { RecordingSocket, peerHost } from '../helpers/recording-socket.js';
import { waitFor } from '../helpers/wait.js';

const host: PeerHost = peerHost();

describe('Peer (the outgoing side of one link)', function () {
  let socket: RecordingSocket;
  let peer: Peer;

  beforeEach(function () {
    socket = new RecordingSocket();
    peer = new Peer(host, 'other@127.0.0.2');
    peer.attach({ ws: socket as unknown as WebSocket, peerNode: 'other@127.0.0.2', incarnation: 'x', maxPayload: 1 << 20, dialer: 'other@127.0.0.2' });
  });

  afterEach(function () {
    peer.close(1000, 'test over');
  });

  it('sends a message queued during a flush (from a failure callback) without waiting for another send', async function () {
    // The first message cannot be encoded; its failure callback queues the error reply while the flush runs.
    peer.send([4, 1, true, () => 'a function'], (error) => peer.send([4, 1, false, error]));
    await waitFor(() => socket.frames.length > 0, 'the error reply to be written', 2000);
    const [[op, id, ok, error]] = socket.frames[0] as [[number, number, boolean, Error]];
    expect([op, id, ok]).to.deep.equal([4, 1, false]);
    expect(error).to.be.instanceOf(EncodeError).with.property('message').that.matches(/functions cannot be sent/);
  });

  it('sends every message queued while a flush is writing', async function () {
    let queuedDuringWrite = false;
    const write = socket.send.bind(socket);
    socket.send = (data, options, done) => {
      write(data, options, done);
      if (!queuedDuringWrite) {
        queuedDuringWrite = true;
        peer.send([1, 'late', 'queued during the write', undefined]);
      }
    };
    peer.send([1, 'first', 'x', undefined]);
    await waitFor(() => socket.frames.flat().length === 2, 'both messages to be written', 2000);
    expect(socket.frames.flat().map((m) => (m as unknown[])[1])).to.deep.equal(['first', 'late']);
  });

  describe('answering a frame', function () {
    /**
     * A peer whose host answers every message `[op, id]` with `[4, id]`, `hops` microtasks later;
     * resolved once the flush that attaching schedules is over (the link is quiet).
     */
    async function answering(hops: number): Promise<{ peer: Peer; socket: RecordingSocket }> {
      const socket = new RecordingSocket();
      const peer: Peer = new Peer({
        ...host,
        receive: (_from, message) => {
          const id = (message as unknown[])[1];
          let settled: Promise<void> = Promise.resolve();
          for (let i = 0; i < hops; i++) settled = settled.then(() => {});
          void settled.then(() => peer.send([4, id, true, id]));
        },
      }, 'other@127.0.0.2');
      peer.attach({ ws: socket as unknown as WebSocket, peerNode: 'other@127.0.0.2', incarnation: 'x', maxPayload: 1 << 20, dialer: 'other@127.0.0.2' });
      await new Promise((resolve) => setImmediate(resolve));
      return { peer, socket };
    }

    it('sends the answers to a frame of several messages in one frame, those settled microtasks later included', async function () {
      const { peer, socket: links } = await answering(3);
      try {
        links.emit('message', encode([[3, 1, 's', null], [3, 2, 's', null], [3, 3, 's', null]]), true);
        await waitFor(() => links.frames.flat().length === 3, 'the three answers', 2000);
        expect(links.frames).to.have.length(1);
        expect(links.frames[0]!.map((m) => (m as unknown[])[1])).to.deep.equal([1, 2, 3]);
      } finally {
        peer.close(1000, 'test over');
      }
    });

    it('answers a frame of one message at once, without waiting for the end of the turn', async function () {
      const { peer, socket: links } = await answering(1);
      try {
        let immediate = false;
        setImmediate(() => (immediate = true));
        links.emit('message', encode([[3, 7, 's', null]]), true);
        await Promise.resolve().then(() => {}).then(() => {});
        expect(immediate).to.equal(false);
        expect(links.frames.flat().map((m) => (m as unknown[])[1])).to.deep.equal([7]);
      } finally {
        peer.close(1000, 'test over');
      }
    });
  });
});
