/**
 * Background work that the emulator runs on the API server's event loop (pod starts and status
 * updates, events, the spawner thread's reports), in order, a few milliseconds per event-loop
 * turn. On a real cluster the kubelet, the scheduler and their event recorders are other
 * processes that the API server answers between their writes; here they share one thread, and
 * 100 pods starting at once made work stretches of 100-200 ms (the completions of 30 pods' sandbox
 * writes, or of their spawns, arrive in one turn) during which no request was answered. Run from
 * this queue, a request waits for at most one slice.
 */
export class WorkQueue {
  private tasks: (() => void)[] = [];
  private next = 0;
  private scheduled = false;
  private stopped = false;

  /** `sliceMs`: how long one event-loop turn may run queued work before requests get their turn. */
  constructor(private readonly sliceMs = 4) {}

  /** Tasks queued and not run yet. */
  get length(): number {
    return this.tasks.length - this.next;
  }

  /** Runs `task` after everything queued before it, on a later event-loop turn. */
  push(task: () => void): void {
    if (this.stopped) return;
    this.tasks.push(task);
    this.schedule();
  }

  /** Drops what is not run yet and refuses new work (the cluster stops). */
  stop(): void {
    this.stopped = true;
    this.tasks = [];
    this.next = 0;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.run());
  }

  private run(): void {
    this.scheduled = false;
    const until = performance.now() + this.sliceMs;
    while (this.next < this.tasks.length && performance.now() < until) {
      const task = this.tasks[this.next++]!;
      try {
        task();
      } catch (error) {
        // One pod's failure never stops the node's work for the others.
        process.emitWarning(`emulated cluster: background work failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      }
    }
    if (this.next >= this.tasks.length) {
      this.tasks = [];
      this.next = 0;
    } else {
      if (this.next > 1024) {
        this.tasks = this.tasks.slice(this.next);
        this.next = 0;
      }
      this.schedule();
    }
  }
}
