import { expect } from 'chai';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { startNode, type ClusterNode } from '../../src/cluster/node.js';
import { decode, encode } from '../../src/cluster/codec.js';
import { heapAfterGc } from '../helpers/heap.js';
import { rawPeer, type RawPeer } from '../helpers/raw-peer.js';
import { waitFor } from '../helpers/wait.js';

const COOKIE = 'fuzz-cookie';
/** Close codes a node may use on a link that sent a bad frame: protocol (4003), too big (1009), ws protocol (1002). */
const BAD_FRAME_CLOSES = [4003, 1009, 1002];
/** Each generator runs this many frames, or stops after its time budget, whichever comes first. */
const RUNS = {
  randomBytes: 2000,
  truncated: 2000,
  wrongShapes: 4000,
  bigints: 2000,
  deep: 300,
  prototypeKeys: 3000,
  extensions: 2000,
  hugeStrings: 100,
  pausedReaders: 20,
};
const TIME_BUDGET_MS = 4000;
/** Frames go out over this many links at once (each on its own raw connection). */
const LINKS = 4;

const plain = new Packr({ useRecords: false });
const noRefs = { peer: 'fuzz', ref: () => null };

/**
 * One authenticated raw link to the node under test. Each frame is followed by a probe request:
 * its reply says the link survived the frame; a close says the node dropped it (then the next
 * frame opens a new link).
 */
class FuzzLink {
  #peer: RawPeer | undefined;
  #probes = 0;
  closes = 0;

  constructor(readonly target: string, readonly as: string) {}

  async deliver(frame: Buffer): Promise<'kept' | 'closed'> {
    const peer = (this.#peer ??= await rawPeer(this.target, COOKIE, this.as));
    const id = 2 ** 40 + ++this.#probes;
    const outcome = new Promise<'kept' | 'closed'>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('neither a probe reply nor a close within 10 s')), 10_000);
      const onMessage = (data: Buffer) => {
        let batch: unknown;
        try {
          batch = decode(data, noRefs);
        } catch {
          return;
        }
        if (Array.isArray(batch) && batch.some((m) => Array.isArray(m) && m[0] === 4 && m[1] === id)) finish('kept');
      };
      const finish = (how: 'kept' | 'closed') => {
        clearTimeout(timer);
        peer.ws.off('message', onMessage);
        resolve(how);
      };
      peer.ws.on('message', onMessage);
      void peer.closed.then(() => finish('closed'));
    });
    peer.ws.send(frame);
    peer.ws.send(encode([[3, id, 'probe', null]]));
    const how = await outcome;
    if (how === 'closed') {
      this.#peer = undefined;
      this.closes++;
      const { code } = await peer.closed;
      expect(BAD_FRAME_CLOSES, `close code ${code}`).to.include(code);
    }
    return how;
  }

  close(): void {
    this.#peer?.ws.terminate();
    this.#peer = undefined;
  }
}

const value = fc.anything({
  maxDepth: 3, maxKeys: 4, withBigInt: true, withMap: true, withSet: true, withDate: true, withTypedArray: true,
  withNullPrototype: true, withSparseArray: true, withBoxedValues: true, withObjectString: true,
});
const opCode = fc.oneof(fc.integer({ min: 0, max: 8 }), value);
const message = fc.oneof(
  fc.tuple(opCode, value, value, value).map((t) => [...t]),
  fc.tuple(opCode, value).map((t) => [...t]),
  // Dispatch runs: a path (or anything) and a list of messages (or anything).
  fc.tuple(fc.constant(7), fc.oneof(fc.string(), value), fc.oneof(fc.array(value, { maxLength: 6 }), value)).map((t) => [...t]),
  fc.array(value, { maxLength: 5 }),
  value,
);
const wrongShapes = fc.array(message, { minLength: 1, maxLength: 8 });

const bigints = fc.oneof(
  fc.tuple(fc.bigInt(), value).map(([op, v]) => [[op, v]]),
  fc.tuple(fc.constantFrom(1, 2, 3, 4, 5, 6, 7), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }), value, value)
    .map(([op, n, a, b]) => [[op, n, a, b]]),
  fc.tuple(fc.bigInt(), fc.bigInt()).map(([a, b]) => [[1, ['t', a], 'x', null], [3, 7, 'probe', b], [4, a, true, b]]),
);

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'then', '__defineGetter__'];
const protoKey = fc.constantFrom(...PROTO_KEYS);
const hostileObject = fc.tuple(protoKey, value).map(([k, v]) => JSON.parse(`{${JSON.stringify(k)}: ${JSON.stringify(v === undefined ? null : typeof v === 'bigint' ? 1 : (() => { try { return JSON.parse(JSON.stringify(v)) ?? null; } catch { return null; } })())}}`) as unknown);
const prototypeKeys = fc.oneof(
  fc.tuple(protoKey, hostileObject).map(([k, o]) => [[1, k, o, null]]),
  fc.tuple(protoKey, hostileObject).map(([k, o]) => [[3, 9, k, o]]),
  fc.tuple(protoKey, protoKey).map(([k, m]) => [[4, 9, false, Object.assign(new Error(m), { name: k })]]),
  fc.tuple(protoKey, protoKey).map(([k, c]) => [[4, 9, false, Object.assign(new Error('e'), { code: c, [k]: 1 })]]),
  fc.tuple(protoKey, value).map(([k, v]) => [[5, 9, v], [1, ['t', 1], v, null], [2, k], [6, 9, k]]),
  fc.tuple(protoKey, hostileObject).map(([k, o]) => [[k, o]]),
);

/** msgpack ext (fixext/ext8/ext16) of type 0x46 (ref) or 0x47 (error) around any payload. */
function extension(type: number, payload: Buffer): Buffer {
  const header = payload.length < 256 ? Buffer.from([0xc7, payload.length, type]) : Buffer.from([0xc8, payload.length >> 8, payload.length & 0xff, type]);
  return Buffer.concat([header, payload]);
}
const extensions = fc.tuple(fc.constantFrom(0x46, 0x47), fc.oneof(
  fc.array(value, { maxLength: 7 }),
  fc.tuple(fc.oneof(fc.string(), value), fc.constantFrom('a', 's', 't', 'r', 'n', 'x'), value).map((t) => [...t]),
  fc.tuple(protoKey, fc.string(), value, value, value, value).map((t) => [...t]),
)).map(([type, payload]) => {
  let bytes: Buffer;
  try {
    bytes = plain.pack(payload);
  } catch {
    bytes = plain.pack(null);
  }
  // [[1, "nobody", <ext>, nil]]: a dispatch carrying the extension as its message.
  return Buffer.concat([Buffer.from([0x91, 0x94, 0x01]), plain.pack('nobody'), extension(type, bytes.subarray(0, 65535)), Buffer.from([0xc0])]);
});

const deep = fc.tuple(fc.integer({ min: 50, max: 30_000 }), fc.constantFrom(0x91, 0x81)).map(([depth, container]) =>
  // 0x91: a one-element array; 0x81: a one-entry map whose key is the int 1 (0x01), value nested.
  Buffer.concat([Buffer.from([0x91]), Buffer.alloc(depth, container === 0x91 ? 0x91 : 0).map((_, i) => (container === 0x91 ? 0x91 : i % 2 === 0 ? 0x81 : 0x01)), Buffer.from([0x01])]));

const hugeStrings = fc.tuple(fc.integer({ min: 10_000, max: 900_000 }), fc.constantFrom(0, 1, 2, 3)).map(([length, slot]) => {
  const s = '\u00e9'.repeat(length / 2);
  return [[s], [1, s, 1, null], [3, 1, s, null], [4, 9, false, Object.assign(new Error(s), { name: s, code: s })]][slot];
});

function frameOf(batch: unknown): Buffer | undefined {
  try {
    return encode(batch);
  } catch {
    return undefined; // not every generated value can be encoded (e.g. a boxed Symbol): nothing to send
  }
}

describe('ClusterNode under fuzzed frames from an authenticated peer', function () {
  this.timeout(120_000);
  let server: ClusterNode;
  let friend: ClusterNode;
  let links: FuzzLink[];
  let baseline: number;
  let friendDowns = 0;
  const counts: Record<string, { runs: number; closed: number }> = {};

  before(async function () {
    server = await startNode({ name: 'fuzzed@127.0.0.15', port: 0, cookie: COOKIE, log: false, maxPayload: 1024 * 1024 });
    server.handle('probe', () => 'ok');
    server.handle('ping', () => 'pong');
    server.handle('slow-big', (n) => new Promise((resolve) => setTimeout(() => resolve('b'.repeat(128 * 1024)), Number(n) % 10)));
    friend = await startNode({ name: 'bystander@127.0.0.16', port: 0, cookie: COOKIE, log: false });
    await friend.connect(server.name);
    friend.on('nodedown', () => friendDowns++);
    links = Array.from({ length: LINKS }, (_, i) => new FuzzLink(server.name, `fuzzer${i}@127.0.0.17`));
    // Warm up every path once before taking the baseline.
    for (const link of links) {
      await link.deliver(encode([[99]]));
      await link.deliver(encode([[1, 'nobody', 'x', null]]));
    }
    baseline = await heapAfterGc();
  });

  after(async function () {
    for (const link of links) link.close();
    await Promise.all([friend.stop(), server.stop()]);
    // Printed for the record: how many frames each generator ran within its budget.
    process.stdout.write(`      fuzz frames run: ${JSON.stringify(counts)}\n`);
  });

  async function run(name: keyof typeof RUNS, frames: fc.Arbitrary<Buffer | undefined>): Promise<void> {
    const tally = (counts[name] = { runs: 0, closed: 0 });
    // One run sends LINKS frames at once, one per link.
    await fc.assert(fc.asyncProperty(fc.array(frames, { minLength: LINKS, maxLength: LINKS }), async (batch) => {
      await Promise.all(batch.map(async (frame, i) => {
        if (frame === undefined) return;
        tally.runs++;
        if ((await links[i]!.deliver(frame)) === 'closed') tally.closed++;
      }));
    }), { numRuns: Math.ceil(RUNS[name] / LINKS), interruptAfterTimeLimit: TIME_BUDGET_MS, endOnFailure: true });
    expect(server.stopped).to.equal(false);
    expect(await friend.request(server.name, 'ping', null, { timeout: 10_000 })).to.equal('pong');
    expect(friendDowns, 'the bystander link went down').to.equal(0);
  }

  it('survives random bytes', async function () {
    await run('randomBytes', fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)));
  });

  it('survives truncated msgpack', async function () {
    await run('truncated', fc.tuple(wrongShapes, fc.nat()).map(([batch, cut]) => {
      const frame = frameOf(batch);
      return frame && frame.length > 1 ? frame.subarray(0, cut % frame.length) : frame;
    }));
  });

  it('survives well-formed frames of the wrong shape', async function () {
    await run('wrongShapes', wrongShapes.map(frameOf));
  });

  it('survives BigInts in every position', async function () {
    await run('bigints', bigints.map(frameOf));
  });

  it('survives deep nesting', async function () {
    await run('deep', deep);
  });

  it('survives prototype keys, in messages, service names, targets and error names', async function () {
    await run('prototypeKeys', prototypeKeys.map(frameOf));
  });

  it('survives malformed ref and error extensions', async function () {
    await run('extensions', extensions);
  });

  it('survives huge strings in every text position', async function () {
    await run('hugeStrings', hugeStrings.map(frameOf));
  });

  it('survives requests followed by a paused reader and a disconnect', async function () {
    const before = server.stats().droppedReplies;
    await fc.assert(fc.asyncProperty(fc.integer({ min: 20, max: 80 }), async (n) => {
      const peer = await rawPeer(server.name, COOKIE, 'pauser@127.0.0.18');
      peer.ws.send(encode(Array.from({ length: n }, (_, i) => [3, i + 1, 'slow-big', i])));
      peer.ws.pause();
      await new Promise((resolve) => setTimeout(resolve, 15)); // let some replies pile up (not a synchronisation: any amount will do)
      peer.ws.terminate();
      await peer.closed;
    }), { numRuns: RUNS.pausedReaders, interruptAfterTimeLimit: TIME_BUDGET_MS });
    await waitFor(() => !server.isConnected('pauser@127.0.0.18'), 'the last paused reader to be seen down');
    // Whether the runs above left replies to drop depends on timing (the kernel buffers several
    // MB of them for a paused reader): one request answered only once its requester is known to
    // be gone makes sure that such a reply is dropped and counted, not written to a dead link.
    let arrived!: () => void;
    const received = new Promise<void>((resolve) => (arrived = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    server.handle('after-gate', () => {
      arrived();
      return gate.then(() => 'late');
    });
    const peer = await rawPeer(server.name, COOKIE, 'pauser@127.0.0.18');
    peer.ws.send(encode([[3, 1, 'after-gate', null]]));
    await received;
    peer.ws.terminate();
    await peer.closed;
    await waitFor(() => !server.isConnected('pauser@127.0.0.18'), 'the gated requester to be seen down');
    release();
    await waitFor(() => server.stats().droppedReplies > before, 'the late reply to be dropped and counted');
    expect(await friend.request(server.name, 'ping', null, { timeout: 10_000 })).to.equal('pong');
  });

  it('returns memory to its starting level', async function () {
    for (const link of links) link.close();
    await waitFor(() => server.connectedNodes().every((n) => !n.startsWith('fuzzer')), 'the fuzz links to be seen down');
    const end = await heapAfterGc();
    expect(end - baseline, `heap grew from ${baseline} to ${end} bytes`).to.be.below(8 * 1024 * 1024);
  });
});
