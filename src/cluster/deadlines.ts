/**
 * Timeouts for many short-lived requests. A Node timer per request costs an allocation and a
 * timer-list update on both arming and clearing, which shows on the hot path at 100k
 * requests/s. Requests with the same timeout expire in the order they were made, so each
 * distinct timeout keeps a FIFO and one timer for its head. Cancelling only marks an entry;
 * heads are skipped lazily and the queue is compacted when cancelled entries pile up behind a
 * long-lived head.
 */

/** A scheduled expiry; `cancel()` is idempotent. */
export interface Deadline {
  cancel(): void;
}

/**
 * What a deadline calls when it passes: a function, or an object that is told by its `expire()`
 * method (a request that is its own handle needs no closure per deadline).
 */
export type Expiry = (() => void) | { expire(): void };

function fire(expiry: Expiry): void {
  if (typeof expiry === 'function') expiry();
  else expiry.expire();
}

/** One deadline in its bucket's queue; it is its own handle (no closure per deadline). */
class Entry implements Deadline {
  readonly at: number;
  fire: Expiry | undefined;
  readonly #bucket: Bucket;

  constructor(bucket: Bucket, at: number, fire: Expiry) {
    this.#bucket = bucket;
    this.at = at;
    this.fire = fire;
  }

  cancel(): void {
    if (this.fire === undefined) return;
    this.fire = undefined;
    this.#bucket.cancelled();
  }
}

class Bucket {
  readonly #timeout: number;
  #queue: Entry[] = [];
  #head = 0;
  #cancelled = 0;
  #timer: NodeJS.Timeout | undefined;

  readonly #onEmpty: () => void;

  constructor(timeout: number, onEmpty: () => void) {
    this.#timeout = timeout;
    this.#onEmpty = onEmpty;
  }

  add(fire: Expiry): Deadline {
    const entry = new Entry(this, performance.now() + this.#timeout, fire);
    this.#queue.push(entry);
    // For the head, not this entry: one added while the bucket expires (a deadline that fires
    // and schedules another) must not delay entries queued before it.
    if (this.#timer === undefined) this.#arm(this.#queue[this.#head]!.at);
    return entry;
  }

  /** One of its entries was cancelled. */
  cancelled(): void {
    this.#cancelled++;
    this.#trim();
  }

  #trim(): void {
    while (this.#head < this.#queue.length && this.#queue[this.#head]!.fire === undefined) {
      this.#head++;
      this.#cancelled--;
    }
    const live = this.#queue.length - this.#head - this.#cancelled;
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    } else if (this.#cancelled > 4096 && this.#cancelled > live) {
      this.#queue = this.#queue.slice(this.#head).filter((e) => e.fire !== undefined);
      this.#head = 0;
      this.#cancelled = 0;
    }
    if (this.#head === this.#queue.length) {
      // The timer stays armed: one request at a time would otherwise arm and clear a timer
      // (and make and drop this bucket) per request. When it fires on an empty queue, the
      // bucket goes; until then it is one timer and an empty array.
      this.#queue = [];
      this.#head = 0;
      this.#cancelled = 0;
    }
  }

  #arm(at: number): void {
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, at - performance.now()));
    this.#timer.unref();
  }

  #expire(): void {
    this.#timer = undefined;
    const now = performance.now();
    // Entries fire in order; one that fires may add or cancel others, which the loop tolerates.
    while (this.#head < this.#queue.length) {
      const entry = this.#queue[this.#head]!;
      if (entry.fire !== undefined && entry.at > now + 1) break;
      this.#head++;
      const expiry = entry.fire;
      if (expiry === undefined) {
        this.#cancelled--;
        continue;
      }
      entry.fire = undefined;
      fire(expiry);
    }
    this.#trim();
    if (this.#timer !== undefined) return; // a fired deadline added one to the emptied queue
    if (this.#head < this.#queue.length) this.#arm(this.#queue[this.#head]!.at);
    else this.#onEmpty();
  }
}

export class Deadlines {
  readonly #buckets = new Map<number, Bucket>();

  /**
   * Calls `fire` (or its `expire()`) after `timeout` ms (rounded up to a whole ms, so that requests made with the
   * rest of a common deadline share a bucket) unless cancelled first.
   */
  after(timeout: number, fire: Expiry): Deadline {
    const ms = Math.ceil(timeout);
    let bucket = this.#buckets.get(ms);
    if (!bucket) {
      bucket = new Bucket(ms, () => this.#buckets.delete(ms));
      this.#buckets.set(ms, bucket);
    }
    return bucket.add(fire);
  }
}
