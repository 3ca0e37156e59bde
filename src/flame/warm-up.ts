/**
 * The parent's side of a call, prepared while a pool's first runners boot. A fresh process runs
 * its first calls in V8's interpreter, and encoding a burst of requests and decoding its replies
 * is most of what the parent does per call: until the JIT has seen enough of them, the first
 * thousands of calls of a fresh pool ran at a third of the steady rate. The parent has nothing
 * else to do while a runner process starts (100 ms and more), so it encodes and decodes frames
 * shaped like a burst of calls and their replies then, in short slices between turns of the
 * event loop (the runners connecting back wait at most one). Nothing is sent; it ends when the
 * boots end or its budget is spent. (A runner has no such idle time before its first calls: a
 * warm-up there, measured, only moved the same work into the first calls.)
 */
import { decode, encode, type DecodeContext } from '../cluster/codec.js';
import { OP_REPLY, OP_REQUEST } from '../cluster/wire.js';
import type { ShippedFunction } from './fn-ref.js';
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
  // A shipped closure's shape (nothing is checked, compiled or sent).
  const fn: ShippedFunction = { kind: 'closure', source: '(x, y) => x + y', hash: '5f0c4a3b2e1d09f8a7b6c5d4e3f2a1b0', id: 1 };
  const requests: unknown[][] = [];
  const replies: unknown[][] = [];
  for (let i = 0; i < FRAME_CALLS; i++) {
    // The first call of a closure carries it; the others, its id.
    const request: CallRequest = { fn: i === 0 ? fn : 1, args: [i, 1], timeout: 29_999 };
    requests.push([OP_REQUEST, i + 1, SERVICE.call, request]);
    replies.push([OP_REPLY, i + 1, true, REPLIES[i % REPLIES.length]]);
  }
  return { requests, replies };
}

/** A budget of warm-up work, spent in slices. */
export class WarmUp {
  readonly #budget: number;
  readonly #slice: number;
  #spent = 0;

  /** `budgetMs` of work at most, in slices of `sliceMs` (an incoming frame waits at most one slice). */
  constructor(budgetMs = BUDGET_MS, sliceMs = SLICE_MS) {
    this.#budget = budgetMs;
    this.#slice = sliceMs;
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
        } while (performance.now() - start < this.#slice);
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
