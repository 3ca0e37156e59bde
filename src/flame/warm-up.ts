/**
 * The parent's side of a call, prepared while a pool's first runners boot. A fresh process runs
 * its first calls in V8's interpreter, and encoding and decoding the frames of a burst is most
 * of what the parent does per call: until the JIT has seen enough of them, the first thousands
 * of calls of a fresh pool ran at a third of the steady rate. The parent has nothing else to do
 * while a runner process starts (100 ms and more), so it encodes and decodes frames shaped like
 * a burst of calls and their replies then, in short slices that leave the event loop free for
 * the runners connecting back. Nothing is sent; it ends when the boots end or its budget is spent.
 */
import { decode, encode, type DecodeContext } from '../cluster/codec.js';
import { OP_REPLY, OP_REQUEST } from '../cluster/wire.js';
import { shipSource } from './fn-ref.js';
import { SERVICE, type CallRequest } from './protocol.js';

/** CPU time spent at most, once per process. */
const BUDGET_MS = 40;
/** One slice of work between two turns of the event loop. */
const SLICE_MS = 1;
/** Calls per frame, as a burst of 100 calls in flight makes them. */
const FRAME_CALLS = 100;

const CONTEXT: DecodeContext = { peer: 'warm-up', ref: () => undefined };

/** Replies of several kinds, as calls return them. */
const REPLIES: readonly unknown[] = [0, 1.5, 'text', true, null, { id: 1, name: 'x' }, [1, 2, 3]];

function frames(): { requests: unknown[][]; replies: unknown[][] } {
  const fn = shipSource('(x, y) => x + y');
  const requests: unknown[][] = [];
  const replies: unknown[][] = [];
  for (let i = 0; i < FRAME_CALLS; i++) {
    const request: CallRequest = { fn, args: [i, 1], timeout: 29_999 };
    requests.push([OP_REQUEST, i + 1, SERVICE.call, request]);
    replies.push([OP_REPLY, i + 1, true, REPLIES[i % REPLIES.length]]);
  }
  return { requests, replies };
}

/** A budget of warm-up work, spent in slices. */
export class WarmUp {
  readonly #budget: number;
  #spent = 0;

  constructor(budgetMs = BUDGET_MS) {
    this.#budget = budgetMs;
  }

  /**
   * Encodes and decodes call-shaped frames in slices until `done()` is true or the budget is
   * spent. Never throws (a failure only means no warm-up).
   */
  run(done: () => boolean): void {
    if (this.#spent >= this.#budget) return;
    let work: ReturnType<typeof frames>;
    let replyFrame: Buffer;
    try {
      work = frames();
      replyFrame = encode(work.replies);
    } catch {
      this.#spent = this.#budget;
      return;
    }
    const slice = (): void => {
      if (done() || this.#spent >= this.#budget) return;
      const start = performance.now();
      try {
        do {
          encode(work.requests);
          decode(replyFrame, CONTEXT);
        } while (performance.now() - start < SLICE_MS);
      } catch {
        this.#spent = this.#budget;
        return;
      }
      this.#spent += performance.now() - start;
      setImmediate(slice);
    };
    setImmediate(slice);
  }
}

/** The process's warm-up: every pool of the process shares its budget. */
const processWarmUp = new WarmUp();

/** {@link WarmUp.run} on the process's budget. */
export function warmCallPath(done: () => boolean): void {
  processWarmUp.run(done);
}
