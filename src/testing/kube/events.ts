/**
 * Records `Event` objects about pods (Scheduled, Pulled, Started, Killing, BackOff...), which
 * `kubectl describe pod` and `kubectl get events` show. Old events are pruned beyond a bound so a
 * long-running emulator does not grow without limit.
 *
 * Written from the work queue, as a real recorder sends them from its own goroutine: a burst of
 * pods makes four events each, and writing them inside the request or status update that caused
 * them made that request hold the API server's event loop several times longer.
 */
import type { Registry } from './registry.js';
import type { Pod, StoredObject } from './types.js';
import type { WorkQueue } from './work-queue.js';

export type EventType = 'Normal' | 'Warning';

let lastClock = 0n;

/** Strictly increasing nanoseconds, in hex. */
function eventClock(): string {
  const now = BigInt(Date.now()) * 1_000_000n + process.hrtime.bigint() % 1_000_000n;
  lastClock = now > lastClock ? now : lastClock + 1n;
  return lastClock.toString(16);
}

export class EventRecorder {
  private readonly recorded: { namespace: string; name: string }[] = [];

  constructor(
    private readonly registry: Registry,
    private readonly maxEvents: number,
    private readonly work: WorkQueue,
  ) {}

  record(pod: Pod, type: EventType, reason: string, message: string, component: 'kubelet' | 'default-scheduler', host?: string): void {
    const namespace = pod.metadata?.namespace ?? 'default';
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const event = {
      // Named like the real recorder's `NAME.<hex nanoseconds>`, so that listing order is time order.
      metadata: { name: `${pod.metadata?.name ?? 'pod'}.${eventClock()}`, namespace },
      involvedObject: {
        kind: 'Pod',
        namespace,
        name: pod.metadata?.name,
        uid: pod.metadata?.uid,
        apiVersion: 'v1',
        resourceVersion: pod.metadata?.resourceVersion,
        ...(component === 'kubelet' ? { fieldPath: `spec.containers{${pod.spec?.containers[0]?.name ?? ''}}` } : {}),
      },
      reason,
      message,
      source: host ? { component, host } : { component },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      type,
      eventTime: null,
      reportingComponent: component,
      reportingInstance: host ?? '',
    };
    this.work.push(() => this.write(namespace, event));
  }

  private write(namespace: string, event: { metadata: { name: string } }): void {
    try {
      // Built by record() and held by no one else: stored without the copy a request body gets.
      const created: StoredObject = this.registry.create('events', namespace, event, true);
      this.recorded.push({ namespace, name: created.metadata.name });
    } catch {
      // Events are best effort, as in a real cluster (e.g. the namespace is being deleted).
    }
    while (this.recorded.length > this.maxEvents) {
      const old = this.recorded.shift()!;
      try {
        this.registry.delete('events', old.namespace, old.name);
      } catch {
        // already gone
      }
    }
  }
}
