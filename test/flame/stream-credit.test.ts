import { expect } from 'chai';
import type { ClusterNode, ReplyReceiver } from '../../src/cluster/node.js';
import { ProtocolError } from '../../src/errors.js';
import { shipFunction } from '../../src/flame/fn-ref.js';
import type { Lease, LeaseSource } from '../../src/flame/lease.js';
import { RemoteStream } from '../../src/flame/stream.js';
import { STREAM_SERVICE, type StreamBatch } from '../../src/flame/stream-protocol.js';
import { waitFor } from '../helpers/wait.js';

interface Sent {
  service: string;
  payload: { max?: number; window?: number };
  receiver: ReplyReceiver;
}

/** A stream on a stand-in runner: the test sees each open and pull and answers them itself. */
function standIn(highWaterMark: number) {
  const sent: Sent[] = [];
  const cancels: unknown[] = [];
  const node = {
    requestTo: (_node: string, service: string, payload: Sent['payload'], receiver: ReplyReceiver) => void sent.push({ service, payload, receiver }),
    request: (_node: string, service: string, payload: unknown) => {
      if (service === STREAM_SERVICE.cancel) cancels.push(payload);
      return Promise.resolve(true);
    },
    monitor: () => () => {},
  } as unknown as ClusterNode;
  const lease: Lease = { runner: 'stand-in-1', node: 'runner@127.0.0.1', release: () => {}, failure: (e) => Promise.resolve(e as Error) };
  const source: LeaseSource = { node, lease: () => Promise.resolve(lease) };
  const stream = new RemoteStream<number>({
    source, shipped: shipFunction(function* () {}, true), args: [], timeout: Infinity, signal: undefined, highWaterMark,
  });
  const batch = (from: number, n: number, done = false): StreamBatch => ({ items: Array.from({ length: n }, (_, i) => from + i), done });
  return { stream, sent, cancels, batch };
}

describe('RemoteStream credit', function () {
  it('keeps the items held plus those asked for within highWaterMark, with a second pull out before the buffer empties', async function () {
    const { stream, sent, batch } = standIn(8);
    await waitFor(() => sent.length === 1, 'the open');
    expect(sent[0]!.service).to.equal(STREAM_SERVICE.open);
    expect(sent[0]!.payload.window).to.equal(8);
    sent[0]!.receiver.settled(true, batch(0, 8));
    for (let i = 0; i < 4; i++) expect((await stream.next()).value).to.equal(i);
    // Half the window free: one pull for it, while 4 items are still held.
    expect(sent.map((s) => s.payload.max)).to.deep.equal([undefined, 4]);
    for (let i = 4; i < 8; i++) expect((await stream.next()).value).to.equal(i);
    expect(sent.map((s) => s.payload.max)).to.deep.equal([undefined, 4, 4]);
    // Replies settling out of order are still taken in the order the pulls went out.
    sent[2]!.receiver.settled(true, batch(12, 4));
    sent[1]!.receiver.settled(true, batch(8, 4));
    const seen: number[] = [];
    for (let i = 0; i < 8; i++) seen.push((await stream.next()).value as number);
    expect(seen).to.deep.equal([8, 9, 10, 11, 12, 13, 14, 15]);
    // Every pull in flight asked for no more than the room there was.
    expect(sent.slice(1).every((s) => (s.payload.max ?? 0) <= 8)).to.equal(true);
    await stream.return();
  });

  it('rejects with ProtocolError and cancels the runner\'s stream when a batch carries more items than asked for', async function () {
    const { stream, sent, cancels, batch } = standIn(4);
    await waitFor(() => sent.length === 1, 'the open');
    sent[0]!.receiver.settled(true, batch(0, 5));
    const error = await stream.next().then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(ProtocolError);
    await waitFor(() => cancels.length === 1, 'the cancel');
    expect(await stream.next()).to.deep.equal({ value: undefined, done: true });
  });
});
