/**
 * The scheduler: binds every new pod to the emulator's single node, unless the node is cordoned
 * or an `unschedulable` fault holds it back, in which case the pod stays Pending with `PodScheduled=False` as a real
 * scheduler reports it, until the fault is cleared.
 *
 * It binds from the work queue, after the create that made the pod has been answered, as the
 * real scheduler (a process of its own, watching) does: binding inside the create doubled the
 * time each of 100 simultaneous creates held the API server's event loop.
 */
import type { EventRecorder } from './events.js';
import type { FaultInjector } from './faults.js';
import { scheduledCondition, setConditions, unschedulableCondition } from './pod-status.js';
import type { Registry } from './registry.js';
import type { ObjectStore, StoreChange } from './store.js';
import type { Pod } from './types.js';
import type { WorkQueue } from './work-queue.js';

export class Scheduler {
  private readonly waiting = new Map<string, { namespace: string; name: string }>();
  private readonly unsubscribe: () => void;
  private stopped = false;

  constructor(
    private readonly store: ObjectStore,
    private readonly registry: Registry,
    private readonly faults: FaultInjector,
    private readonly events: EventRecorder,
    private readonly nodeName: string,
    private readonly work: WorkQueue,
  ) {
    this.unsubscribe = store.subscribe((change) => this.onChange(change));
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe();
    this.waiting.clear();
  }

  /** Tries again to place pods that a fault kept Pending. */
  retryWaiting(): void {
    for (const [uid, { namespace, name }] of [...this.waiting]) {
      const pod = this.store.get('pods', namespace, name) as Pod | undefined;
      if (!pod || pod.metadata?.uid !== uid) {
        this.waiting.delete(uid);
        continue;
      }
      this.schedule(pod);
    }
  }

  private onChange(change: StoreChange): void {
    // An uncordoned node (`kubectl uncordon`) takes the pods that waited for it.
    if (change.resource === 'nodes' && change.type === 'MODIFIED' && !this.cordoned()) this.retryWaiting();
    if (change.resource !== 'pods') return;
    const pod = change.object as Pod;
    const uid = pod.metadata?.uid ?? '';
    if (change.type === 'DELETED') {
      this.waiting.delete(uid);
      return;
    }
    if (change.type === 'ADDED' && !pod.spec?.nodeName && !pod.metadata?.deletionTimestamp) {
      const { namespace = '', name = '' } = pod.metadata ?? {};
      this.work.push(() => {
        const current = this.store.get('pods', namespace, name) as Pod | undefined;
        if (!this.stopped && current?.metadata?.uid === uid && !current.spec?.nodeName && !current.metadata.deletionTimestamp) this.schedule(current);
      });
    }
  }

  /** Whether the node is cordoned (`spec.unschedulable`, as `kubectl cordon` and `drain` set it). */
  private cordoned(): boolean {
    return (this.store.get('nodes', '', this.nodeName)?.spec as { unschedulable?: boolean } | undefined)?.unschedulable === true;
  }

  private schedule(pod: Pod): void {
    const namespace = pod.metadata?.namespace ?? '';
    const name = pod.metadata?.name ?? '';
    const uid = pod.metadata?.uid ?? '';
    if (this.cordoned() || this.faults.podFault(pod, 'unschedulable')) {
      const first = !this.waiting.has(uid);
      this.waiting.set(uid, { namespace, name });
      this.registry.mutate('pods', namespace, name, (draft) => {
        if (draft.metadata.uid !== uid) return;
        setConditions((draft as Pod).status!, [unschedulableCondition()]);
      });
      if (first) this.events.record(pod, 'Warning', 'FailedScheduling', unschedulableCondition().message!, 'default-scheduler');
      return;
    }
    this.waiting.delete(uid);
    const bound = this.registry.mutate('pods', namespace, name, (draft) => {
      const p = draft as Pod;
      if (draft.metadata.uid !== uid || p.spec?.nodeName || draft.metadata.deletionTimestamp) return;
      p.spec!.nodeName = this.nodeName;
      setConditions(p.status!, [scheduledCondition()]);
    });
    if (bound && (bound as Pod).spec?.nodeName === this.nodeName) {
      this.events.record(pod, 'Normal', 'Scheduled', `Successfully assigned ${namespace}/${name} to ${this.nodeName}`, 'default-scheduler');
    }
  }
}
