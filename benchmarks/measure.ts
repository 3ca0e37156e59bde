/** Timed measuring loops shared by the suites: throughput for a duration, latency into an HDR histogram. */
import { setImmediate as turn } from 'node:timers/promises';
import hdr from 'hdr-histogram-js';

export type Histogram = ReturnType<typeof hdr.build>;

/** Microseconds, 3 significant digits, up to an hour. */
export function histogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
}

/** The percentiles drawn in the report's latency chart. */
export const CHART_PERCENTILES = [0, 10, 25, 50, 75, 90, 95, 99, 99.9, 100];

export function percentilePoints(h: Histogram): [number, number][] {
  return CHART_PERCENTILES.map((p) => [p, h.getValueAtPercentile(p)]);
}

/** Runs `once` one at a time for `ms`, recording each round trip (microseconds) into `into`. */
export async function latencyFor(ms: number, once: () => Promise<unknown>, into?: Histogram): Promise<number> {
  const end = performance.now() + ms;
  let n = 0;
  while (performance.now() < end) {
    const t = performance.now();
    await once();
    into?.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
    n++;
  }
  return n;
}

/** Keeps `inFlight` calls of `once` outstanding for `ms`; returns completions per second. */
export async function throughputFor(ms: number, inFlight: number, once: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  const end = start + ms;
  let done = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (performance.now() < end) {
      await once();
      done++;
    }
  }));
  return done / ((performance.now() - start) / 1000);
}

/** A one-way stream target: `send` queues one batch of `size` messages, `sync` resolves to the count received so far. */
export interface StreamTarget {
  send(size: number): void;
  sync(): Promise<number>;
}

const BATCH = 1000;
/** Syncs outstanding per target before sending more: bounds what piles up in the receiver's mailbox. */
const WINDOW = 2;
const BATCHES_PER_SYNC = 10;

/**
 * Streams batches (one per target per event-loop turn) for `ms` and returns the messages the
 * targets counted per second. Each target is synced every 10 batches and the stream pauses while
 * two syncs are unanswered, so what is measured is what the receivers handle, not what piles up.
 */
export async function streamFor(ms: number, targets: StreamTarget[]): Promise<number> {
  const before = await Promise.all(targets.map((t) => t.sync()));
  const pending = targets.map(() => [] as Promise<number>[]);
  const start = performance.now();
  const end = start + ms;
  for (let batch = 1; performance.now() < end; batch++) {
    for (const [i, target] of targets.entries()) {
      target.send(BATCH);
      if (batch % BATCHES_PER_SYNC === 0) pending[i]!.push(target.sync());
      while (pending[i]!.length > WINDOW) await pending[i]!.shift();
    }
    await turn();
  }
  const after = await Promise.all(targets.map((t) => t.sync()));
  const counted = after.reduce((sum, n, i) => sum + n - before[i]!, 0);
  return counted / ((performance.now() - start) / 1000);
}
