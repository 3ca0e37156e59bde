import { expect } from 'chai';
import type { WebSocket } from 'ws';
import { Outbox, type OutboxHost } from '../../src/cluster/outbox.js';
import { EncodeError, OverloadedError } from '../../src/errors.js';
import { linkTrafficChannel, type LinkTrafficMessage } from '../../src/observability/diagnostics.js';
import { RecordingSocket, peerHost } from '../helpers/recording-socket.js';
import { waitFor } from '../helpers/wait.js';

const NODE = 'other@127.0.0.2';

/** The next turn of the event loop (after the check phase that ends a write turn). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('Outbox (the outgoing queue of one link)', function () {
  let host: OutboxHost;
  let socket: RecordingSocket;
  let outbox: Outbox;

  function up(box: Outbox, on: RecordingSocket, maxPayload = 1 << 20): void {
    box.attach({ ws: on as unknown as WebSocket, maxPayload });
  }

  /** The ids (second element) of the messages written so far, frame by frame. */
  function framesOfIds(on: RecordingSocket = socket): unknown[][] {
    return on.frames.map((frame) => frame.map((m) => (m as unknown[])[1]));
  }

  beforeEach(function () {
    host = peerHost();
    socket = new RecordingSocket();
    outbox = new Outbox(host, NODE);
    up(outbox, socket);
  });

  it('writes a lone message on a quiet link at once, within the call that sends it', function () {
    outbox.send([4, 1, true, 'answer'], undefined);
    expect(framesOfIds()).to.deep.equal([[1]]);
  });

  it('holds every message queued in a turn that received a frame of several messages, and writes them as one frame at its end', async function () {
    host.writeTurn.received();
    for (const id of [1, 2, 3]) outbox.send([4, id, true, id], undefined);
    outbox.dispatch('a', 'one-way');
    expect(socket.frames).to.deep.equal([]);
    await nextTurn();
    expect(framesOfIds()).to.deep.equal([[1, 2, 3, 'a']]);
  });

  it('writes messages queued while a flush is due as one frame on a later turn', async function () {
    outbox.flushLater();
    for (const id of [1, 2, 3]) outbox.send([4, id, true, id], undefined);
    expect(socket.frames).to.deep.equal([]);
    await waitFor(() => socket.frames.length > 0, 'the frame', 2000);
    expect(framesOfIds()).to.deep.equal([[1, 2, 3]]);
  });

  it('stops coalescing a stream of one message per turn at 64 messages a frame', async function () {
    outbox.flushLater();
    for (let id = 0; id < 200; id++) {
      outbox.send([4, id, true, id], undefined);
      await nextTurn();
    }
    await waitFor(() => socket.frames.flat().length === 200, 'the 200 messages', 5000);
    expect(framesOfIds().flat()).to.deep.equal(Array.from({ length: 200 }, (_, id) => id));
    for (const frame of socket.frames) expect(frame.length).to.be.at.most(64);
  });

  it('fails only the message that does not encode, through its callback; the others of its frame leave in order', async function () {
    const failed: [Error, unknown[]][] = [];
    host.writeTurn.received();
    outbox.send([4, 1, true, 1], undefined);
    outbox.send([4, 2, true, () => 'a function'], (error, message) => failed.push([error, message]));
    outbox.send([4, 3, true, 3], undefined);
    await nextTurn();
    expect(framesOfIds().flat()).to.deep.equal([1, 3]);
    expect(failed).to.have.length(1);
    expect(failed[0]![0]).to.be.instanceOf(EncodeError);
    expect(failed[0]![1][1]).to.equal(2);
  });

  it('refuses a message with OverloadedError once maxQueuedMessages wait, and lets whenWritable() waiters go once they have left', async function () {
    const small = peerHost({ maxQueuedMessages: 4 });
    const box = new Outbox(small, NODE);
    // The link is not up yet: messages wait in the queue.
    for (const id of [1, 2, 3, 4]) box.send([4, id, true, id], undefined);
    expect(() => box.dispatch('a', 5)).to.throw(OverloadedError).with.property('message').that.matches(/4 messages are queued for other@127\.0\.0\.2/);
    let writable = false;
    void box.whenWritable().then(() => (writable = true));
    await nextTurn();
    expect(writable).to.equal(false);
    const recording = new RecordingSocket();
    up(box, recording);
    box.flushLater();
    await waitFor(() => writable, 'whenWritable() to resolve', 2000);
    expect(framesOfIds(recording)).to.deep.equal([[1, 2, 3, 4]]);
    expect(box.idle).to.equal(true);
  });

  it('when its link goes down, fails queued messages through their callbacks and hands back those without one', function () {
    const box = new Outbox(host, NODE);
    const failed: unknown[] = [];
    box.send([3, 1, 'service', null], (error, message) => failed.push([error.message, message[1]]));
    box.dispatch('a', 'x');
    box.dispatch('a', 'y');
    const unreported = box.linkDown(new Error('gone'), false);
    expect(failed).to.deep.equal([['gone', 1]]);
    expect(unreported).to.deep.equal([[7, 'a', ['x', 'y']]]);
    expect(box.idle).to.equal(true);
  });

  it('keeps its queue for the next socket when its link is replaced, and writes nothing more to the old one', async function () {
    const box = new Outbox(host, NODE);
    const old = new RecordingSocket();
    up(box, old);
    box.flushLater();
    box.send([4, 1, true, 1], undefined);
    expect(box.linkDown(new Error('replaced'), true)).to.deep.equal([]);
    const next = new RecordingSocket();
    up(box, next);
    box.flushLater();
    await waitFor(() => next.frames.length > 0, 'the message on the new socket', 2000);
    expect(framesOfIds(next)).to.deep.equal([[1]]);
    expect(old.frames).to.deep.equal([]);
  });

  it('publishes each frame it writes on the link traffic channel, with its size and message count', function () {
    const seen: LinkTrafficMessage[] = [];
    const listener = (m: unknown) => seen.push(m as LinkTrafficMessage);
    linkTrafficChannel.subscribe(listener);
    try {
      outbox.dispatch('a', 1);
      expect(seen).to.have.length(1);
      expect(seen[0]).to.include({ node: host.name, peer: NODE, direction: 'out', messages: 1 });
      expect(seen[0]!.bytes).to.be.greaterThan(0);
    } finally {
      linkTrafficChannel.unsubscribe(listener);
    }
  });
});
