/** What the peer benchmarks share: the call load, a started system's shape, a process's memory. */
import { readFileSync } from 'node:fs';

export type AddCall = (a: number, b: number) => Promise<number>;

/** A system under test, started with some number of workers, driven by `call`. */
export interface CallSystem {
  call: AddCall;
  /** The worker processes' ids (for their memory, and to make sure none is left). */
  pids: number[];
  stop(): Promise<void>;
}

/** Runs `n` calls with `inFlight` outstanding; resolves to calls per second. */
export async function pipelined(call: AddCall, n: number, inFlight = 100): Promise<number> {
  let started = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (started < n) {
      const a = started++;
      const r = await call(a, 1);
      if (r !== a + 1) throw new Error(`wrong result ${r} for ${a} + 1`);
    }
  }));
  return n / ((performance.now() - start) / 1000);
}

/** Resident memory of a process, in MB (Linux). */
export function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) / 1024;
}

/** How long a worker sits idle before its memory is read (as `idle-runner-rss` does). */
export const IDLE_MS = 1000;

/** RSS of a one-worker system's process after `calls` calls (100 in flight) and `IDLE_MS` idle. */
export async function idleRss(start: () => Promise<CallSystem>, calls = 1): Promise<number> {
  const sys = await start();
  try {
    if (calls <= 1) await sys.call(1, 2);
    else await pipelined(sys.call, calls);
    await new Promise<void>((resolve) => setTimeout(resolve, IDLE_MS));
    return rssMb(sys.pids[0]!);
  } finally {
    await sys.stop();
  }
}

/** SIGKILLs what is still alive of `pids` (a peer library's own shutdown may leave one behind). */
export function killLeftovers(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
