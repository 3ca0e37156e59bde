import { expect } from 'chai';
import fc from 'fast-check';
import type { ClusterNode, RequestContext, ServiceHandler } from '../../src/cluster/node.js';
import { FlameError, ProtocolError } from '../../src/errors.js';
import { shipFunction } from '../../src/flame/fn-ref.js';
import { STREAM_SERVICE, type StreamBatch } from '../../src/flame/stream-protocol.js';
import { createLogger } from '../../src/log.js';
import { FunctionLoader } from '../../src/runner/fn-loader.js';
import { installStreamServices } from '../../src/runner/stream-service.js';
import type { Terminator } from '../../src/runner/terminator.js';

/** The stream services on a stand-in node, with a terminator that only counts. */
function services() {
  const handlers = new Map<string, ServiceHandler>();
  const counts = { calls: 0, children: 0 };
  const node = { handle: (service: string, fn: ServiceHandler) => handlers.set(service, fn), on: () => node } as unknown as ClusterNode;
  const terminator = {
    callStarted: () => counts.calls++,
    callEnded: () => counts.calls--,
    childPlaced: () => counts.children++,
    childStopped: () => counts.children--,
  } as unknown as Terminator;
  installStreamServices({
    node, runner: 'fuzz-1', loader: new FunctionLoader(), terminator, logger: createLogger(false, 'fuzz'), refuseWhileDraining: () => {},
  });
  const context: RequestContext = { peer: 'parent@127.0.0.1', onCancel: () => {}, signal: new AbortController().signal };
  /** Calls a handler as the node does: whatever it throws or rejects with is its answer. */
  const call = async (service: string, payload: unknown): Promise<{ ok: boolean; value: unknown }> => {
    try {
      return { ok: true, value: await handlers.get(service)!(payload, context) };
    } catch (error) {
      return { ok: false, value: error };
    }
  };
  return { call, counts };
}

const generator = shipFunction(async function* (n: number) {
  for (let i = 0; i < (typeof n === 'number' && n < 50 ? n : 3); i++) yield i;
}, true);
const plain = shipFunction((x: unknown) => x);
/** Yields 0, 1, 2, ... every few ms: pulls wait for it. */
const slow = shipFunction(async function* () {
  for (let i = 0; ; i++) {
    yield i;
    await new Promise((r) => setTimeout(r, 3));
  }
}, true);

describe('runner stream services', function () {
  it('answer anything a peer sends with a result or a FlameError, and give back every slot they took', async function () {
    this.timeout(30_000);
    const service = fc.constantFrom(STREAM_SERVICE.open, STREAM_SERVICE.pull, STREAM_SERVICE.cancel, STREAM_SERVICE.track);
    const payload = fc.oneof(
      fc.anything(),
      fc.record({
        id: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.anything()),
        fn: fc.oneof(fc.constant(generator), fc.constant(plain), fc.anything()),
        args: fc.oneof(fc.array(fc.integer({ min: -2, max: 60 }), { maxLength: 2 }), fc.anything()),
        window: fc.oneof(fc.integer({ min: -5, max: 100 }), fc.anything()),
        max: fc.oneof(fc.integer({ min: -5, max: 100 }), fc.anything()),
        timeout: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 50 }), fc.anything()),
      }, { requiredKeys: [] }),
    );
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(service, payload), { minLength: 1, maxLength: 12 }), async (requests) => {
      const { call, counts } = services();
      const answers = await Promise.all(requests.map(([s, p]) => call(s, p)));
      for (const { ok, value } of answers) {
        if (!ok && !(value instanceof FlameError)) {
          // Errors of the shipped work itself (a bad argument to it) are the work's; anything from the service is a FlameError.
          expect(value, String(value)).to.satisfy((e: unknown) => e instanceof Error);
        }
      }
      // Close whatever is left: every slot comes back.
      const ids = requests.map(([, p]) => (p as { id?: unknown } | null)?.id).filter((id) => Number.isSafeInteger(id));
      for (const id of ids) await call(STREAM_SERVICE.cancel, { id });
      expect(counts).to.deep.equal({ calls: 0, children: 0 });
    }), { numRuns: 300, interruptAfterTimeLimit: 10_000 });
  });

  it('keep several pulls waiting, answer them in order, and refuse pulls asking for more than the window in all', async function () {
    const { call, counts } = services();
    const opened = await call(STREAM_SERVICE.open, { id: 1, fn: slow, args: [], window: 8, timeout: -1 });
    expect(opened.ok, String(opened.value)).to.equal(true);
    const first = (opened.value as StreamBatch).items as number[];
    const a = call(STREAM_SERVICE.pull, { id: 1, max: 4 });
    const b = call(STREAM_SERVICE.pull, { id: 1, max: 4 });
    const over = await call(STREAM_SERVICE.pull, { id: 1, max: 1 });
    expect(over.ok).to.equal(false);
    expect(over.value).to.be.instanceOf(ProtocolError);
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra.ok && rb.ok).to.equal(true);
    const items = [...first, ...(ra.value as StreamBatch).items as number[], ...(rb.value as StreamBatch).items as number[]];
    expect(items).to.deep.equal(Array.from({ length: items.length }, (_, i) => i));
    expect((ra.value as StreamBatch).items.length).to.be.within(1, 4);
    await call(STREAM_SERVICE.cancel, { id: 1 });
    expect(counts).to.deep.equal({ calls: 0, children: 0 });
  });
});
