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

  /** The one-way messages written so far, as [path, message] in the order they went out. */
  function dispatched(): [unknown, unknown][] {
    return socket.frames.flat().flatMap((m) => {
      const [op, path, messages] = m as [number, unknown, unknown[]];
      return op === 7 ? messages.map((x): [unknown, unknown] => [path, x]) : [];
    });
  }

  it('sends consecutive one-way messages to one actor as one run, and starts a new run at another actor', async function () {
    const sent: [string, number][] = [['a', 1], ['a', 2], ['a', 3], ['b', 4], ['b', 5], ['a', 6]];
    for (const [path, n] of sent) peer.dispatch(path, n);
    await waitFor(() => dispatched().length === sent.length, 'the six messages', 2000);
    expect(dispatched()).to.deep.equal(sent);
    // Queued in one turn (a flush was already scheduled when the link came up): one frame of three runs.
    expect(socket.frames).to.deep.equal([[[7, 'a', [1, 2, 3]], [7, 'b', [4, 5]], [7, 'a', [6]]]]);
  });

  it('drops only the message of a run that cannot be encoded; the rest of the run leaves in order', async function () {
    const warnings: string[] = [];
    const quiet = new Peer(peerHost({ logger: { ...host.logger, warn: (line: string) => warnings.push(line) } }), 'other@127.0.0.3');
    const recording = new RecordingSocket();
    quiet.attach({ ws: recording as unknown as WebSocket, peerNode: 'other@127.0.0.3', incarnation: 'y', maxPayload: 1 << 20, dialer: 'other@127.0.0.3' });
    try {
      quiet.dispatch('a', 0);
      for (const n of [1, 2, () => 'not data', 4]) quiet.dispatch('a', n);
      const flat = () => recording.frames.flat().flatMap((m) => (m as [number, string, unknown[]])[2]);
      await waitFor(() => flat().length === 4, 'the four good messages', 2000);
      expect(flat()).to.deep.equal([0, 1, 2, 4]);
      expect(warnings.join('\n')).to.match(/dropped: functions cannot be sent/);
    } finally {
      quiet.close(1000, 'test over');
    }
  });

  it('splits a run larger than the peer\'s maxPayload into frames that fit', async function () {
    const small = new Peer(host, 'other@127.0.0.4');
    const recording = new RecordingSocket();
    small.attach({ ws: recording as unknown as WebSocket, peerNode: 'other@127.0.0.4', incarnation: 'z', maxPayload: 4096, dialer: 'other@127.0.0.4' });
    try {
      small.dispatch('a', 'first');
      const big = Array.from({ length: 40 }, (_, i) => `${i}:${'x'.repeat(400)}`);
      for (const text of big) small.dispatch('a', text);
      const flat = () => recording.frames.flat().flatMap((m) => (m as [number, string, unknown[]])[2]);
      await waitFor(() => flat().length === 41, 'the 41 messages', 2000);
      expect(flat()).to.deep.equal(['first', ...big]);
      expect(recording.frames.length).to.be.at.least(5);
    } finally {
      small.close(1000, 'test over');
    }
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
