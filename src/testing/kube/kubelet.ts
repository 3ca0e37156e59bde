/**
 * The kubelet of the emulator's single node: starts a {@link PodWorker} for every pod bound to the
 * node, passes it deletions, and tears it down when the pod object is gone. It also answers for
 * the node (logs, node failure) and kills every pod process when the cluster stops.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { PodAddressAllocator } from './addresses.js';
import type { NodeFailureOptions } from './faults.js';
import { EXTERNAL_POD_ANNOTATION, POD_IP_ANNOTATION, PodWorker, type PodWorkerContext } from './pod-worker.js';
import type { ObjectStore, StoreChange } from './store.js';
import { apiErrors } from './status.js';
import type { Pod, StoredObject } from './types.js';

export class Kubelet {
  private readonly workers = new Map<string, PodWorker>();
  /**
   * Workers of pods gone from the API whose processes are being killed: their processes are still
   * listed, and stopping the node waits for them, until the spawner thread has seen them end.
   */
  private readonly disposing = new Map<PodWorker, Promise<void>>();
  private readonly unsubscribe: () => void;
  private stopping = false;

  constructor(
    store: ObjectStore,
    private readonly ctx: PodWorkerContext,
    private readonly addresses: PodAddressAllocator,
    private readonly sandboxRoot: string,
  ) {
    mkdirSync(sandboxRoot, { recursive: true });
    this.unsubscribe = store.subscribe((change) => this.onChange(change));
  }

  /** The worker running a pod, for logs and faults; 404 when the pod is not on the node. */
  worker(namespace: string, name: string): PodWorker {
    for (const worker of this.workers.values()) {
      if (worker.namespace === namespace && worker.name === name) return worker;
    }
    throw apiErrors.notFound('pods', name);
  }

  /** Every pod process now running, those of deleted pods being killed included (tests check that none is left behind). */
  processes(): { namespace: string; name: string; pid: number }[] {
    const found: { namespace: string; name: string; pid: number }[] = [];
    for (const w of [...this.workers.values(), ...this.disposing.keys()]) for (const pid of w.pids) found.push({ namespace: w.namespace, name: w.name, pid });
    return found;
  }

  async killNodeOf(namespace: string, name: string, options: NodeFailureOptions): Promise<void> {
    await this.worker(namespace, name).killNode(options);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.unsubscribe();
    const workers = [...this.workers.values()];
    for (const w of workers) this.remove(w);
    await Promise.all(this.disposing.values());
  }

  private onChange(change: StoreChange): void {
    if (change.resource !== 'pods' || this.stopping) return;
    const pod = change.object as Pod & StoredObject;
    const uid = pod.metadata.uid;
    const worker = this.workers.get(uid);
    if (change.type === 'DELETED') {
      if (worker) this.remove(worker);
      return;
    }
    if (worker) {
      worker.observe(pod);
      return;
    }
    if (pod.spec?.nodeName !== this.ctx.nodeName) return;
    if (pod.metadata.deletionTimestamp) {
      this.ctx.registry.finishDeletion('pods', change.namespace, pod.metadata.name);
      return;
    }
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
    // Named by uid, so that no file-system call is needed here (the worker creates it, asynchronously).
    const sandbox = join(this.sandboxRoot, `${change.namespace}_${pod.metadata.name}_${uid}`);
    const fixedIP = pod.metadata.annotations?.[EXTERNAL_POD_ANNOTATION] === 'true' ? pod.metadata.annotations[POD_IP_ANNOTATION] : undefined;
    const started = new PodWorker(pod, this.ctx, fixedIP ?? this.addresses.allocate(), sandbox);
    this.workers.set(uid, started);
    // Starting writes status, which this very listener hears: let the current notification finish first.
    queueMicrotask(() => {
      if (this.workers.get(uid) === started) void started.start();
    });
  }

  private remove(worker: PodWorker): void {
    this.workers.delete(worker.uid);
    const disposed = worker.dispose().finally(() => {
      this.disposing.delete(worker);
      this.addresses.release(worker.podIP);
    });
    this.disposing.set(worker, disposed);
  }
}
