/**
 * Runs one pod on the emulated node: the pod's sandbox (its address and service-account folder),
 * every container as an OS process ({@link ContainerRunner}), and a graceful stop (SIGTERM, grace
 * period, SIGKILL) when the pod is deleted. The pod's phase and conditions are computed from its
 * containers as the kubelet does, and written back to the API.
 *
 * Nothing here holds the event loop the API server shares for long: the sandbox is written and
 * processes start in the spawner thread, and starting the containers and
 * writing the pod's status run from the node's work queue, a slice per event-loop turn. Status
 * writes are coalesced as the kubelet's status manager does: changes that come while one is
 * queued are written together, as the latest state.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ContainerRunner, type ContainerHost } from './container-runner.js';
import type { NodeFailureOptions } from './faults.js';
import type { ImageDefinition } from './images.js';
import { lifecycleConditions, rfc3339, setConditions } from './pod-status.js';
import type { PodWorkerContext } from './pod-worker-context.js';
import type { Pod, StoredObject } from './types.js';

export type { PodWorkerContext } from './pod-worker-context.js';

/**
 * A pod with this annotation set to "true" is run by a process outside the emulator (typically the
 * test process itself, standing in for an application pod): the kubelet reports it Running at
 * once and starts nothing; deleting it completes without waiting.
 */
export const EXTERNAL_POD_ANNOTATION = 'emulator.flame-actors/external';
/** Optional, with {@link EXTERNAL_POD_ANNOTATION}: the pod IP to report (default: a 127.1.x.y address). */
export const POD_IP_ANNOTATION = 'emulator.flame-actors/pod-ip';

type Phase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export class PodWorker implements ContainerHost {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  private readonly containers: ContainerRunner[];
  private terminatingFlag = false;
  private nodeLost: NodeFailureOptions | undefined;
  private stopped = false;
  private started = false;
  private finished = false;
  private startTime: string | undefined;
  /** Bumped by each change: a queued status write runs only if no later change queued another. */
  private publishTicket = 0;
  /** The sandbox being written: disposal waits for it, so that no file lands after the folder is removed. */
  private preparing: Promise<void> = Promise.resolve();

  constructor(
    private current: Pod & StoredObject,
    readonly ctx: PodWorkerContext,
    readonly podIP: string,
    readonly sandboxDir: string,
  ) {
    this.uid = current.metadata.uid;
    this.namespace = current.metadata.namespace ?? 'default';
    this.name = current.metadata.name;
    this.containers = current.spec!.containers.map((c) => new ContainerRunner(c, this));
  }

  get pod(): Pod & StoredObject {
    return this.current;
  }

  /**
   * The downward API's `status.podIP` and `status.hostIP` come from the sandbox, as the real
   * kubelet's do: the containers start before the status naming them is written.
   */
  get sandboxedPod(): Pod & StoredObject {
    return { ...this.current, status: { ...this.current.status, ...this.sandboxAddresses() } };
  }

  get halted(): boolean {
    return this.terminatingFlag || this.stopped || this.nodeLost !== undefined;
  }

  get terminating(): boolean {
    return this.terminatingFlag;
  }

  get serviceAccountDir(): string {
    return join(this.sandboxDir, 'serviceaccount');
  }

  /** The container named `name` (for `kubectl logs -c`). */
  container(name: string): ContainerRunner | undefined {
    return this.containers.find((c) => c.name === name);
  }

  /** The pids of the pod's running container processes. */
  get pids(): number[] {
    return this.containers.map((c) => c.pid).filter((p): p is number => p !== undefined);
  }

  async start(): Promise<void> {
    this.preparing = this.prepareSandbox();
    try {
      await this.preparing;
    } catch (error) {
      this.ctx.events.record(this.current, 'Warning', 'FailedCreatePodSandBox', `Failed to create pod sandbox: ${String(error)}`, 'kubelet', this.ctx.nodeName);
      return;
    }
    this.ctx.work.push(() => this.startContainers());
  }

  /** The sandbox is there: start every container (or finish a deletion that came meanwhile). */
  private startContainers(): void {
    if (this.halted) {
      if (this.terminatingFlag) this.finishDeletion();
      return;
    }
    this.started = true;
    this.startTime = rfc3339();
    if (this.current.metadata.annotations?.[EXTERNAL_POD_ANNOTATION] === 'true') {
      for (const c of this.containers) c.runExternally();
    } else {
      for (const c of this.containers) c.start();
    }
    this.changed();
  }

  /** The pod object changed: a deletion (maybe with a shorter grace period), or a new container image. */
  observe(pod: Pod & StoredObject): void {
    this.current = pod;
    if (pod.metadata.deletionTimestamp) {
      // As the kubelet picks it: the deletion's grace period, else the pod's, else the default
      // 30 s; never "at once" for want of a field (that SIGKILLed a pod that was to get 1 s).
      this.terminate(pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30);
      return;
    }
    if (!this.started) return;
    for (const spec of pod.spec?.containers ?? []) this.container(spec.name)?.observe(spec);
  }

  /**
   * Graceful stop for a deletion: SIGTERM now, SIGKILL after `graceSeconds`; the object is removed
   * from the API once every process is gone. A later, shorter grace period brings SIGKILL forward.
   */
  terminate(graceSeconds: number): void {
    const first = !this.terminatingFlag;
    this.terminatingFlag = true;
    if (!this.started) return; // start() finishes the deletion once the sandbox is there
    if (first) {
      for (const c of this.containers) {
        if (c.alive) this.ctx.events.record(this.current, 'Normal', 'Killing', `Stopping container ${c.name}`, 'kubelet', this.ctx.nodeName);
      }
    }
    for (const c of this.containers) c.stop(graceSeconds);
    this.changed();
  }

  /** SIGKILL at once, as when a node dies; then the control plane does as `options.afterwards` says. */
  async killNode(options: NodeFailureOptions): Promise<void> {
    this.nodeLost = options;
    await Promise.all(this.containers.map((c) => c.kill()));
    this.markNodeLost(options);
  }

  /** The object is gone (or the cluster stops): kill everything now and clean up. */
  async dispose(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.containers.map((c) => c.kill()));
    for (const c of this.containers) c.dispose();
    this.ctx.faults.forget(this.uid);
    await this.preparing.catch(() => {});
    // Never fails a stop: whatever cannot be removed now goes with the cluster's folder.
    await rm(this.sandboxDir, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
  }

  /**
   * A container's state changed: write the pod's status, and finish a deletion once all are gone.
   * Written from the work queue, after whatever was queued before (the events about the change).
   */
  changed(): void {
    const ticket = ++this.publishTicket;
    this.ctx.work.push(() => {
      if (ticket === this.publishTicket) this.sync();
    });
  }

  private sync(): void {
    if (this.stopped || this.nodeLost || this.finished) return;
    this.publish();
    if (this.terminatingFlag && this.containers.every((c) => !c.alive)) this.finishDeletion();
  }

  baseEnvironment(image: ImageDefinition | undefined): Record<string, string> {
    const port = String(this.ctx.apiPort);
    const seenBy = this.ctx.launcher.serviceAccountPathSeenByPod(this.serviceAccountDir);
    return {
      ...this.ctx.baseEnv,
      ...(image?.env ?? {}),
      HOSTNAME: this.name,
      KUBERNETES_SERVICE_HOST: this.ctx.apiHost,
      KUBERNETES_SERVICE_PORT: port,
      KUBERNETES_SERVICE_PORT_HTTPS: port,
      KUBERNETES_PORT: `tcp://${this.ctx.apiHost}:${port}`,
      [`KUBERNETES_PORT_${port}_TCP`]: `tcp://${this.ctx.apiHost}:${port}`,
      [`KUBERNETES_PORT_${port}_TCP_PROTO`]: 'tcp',
      [`KUBERNETES_PORT_${port}_TCP_PORT`]: port,
      [`KUBERNETES_PORT_${port}_TCP_ADDR`]: this.ctx.apiHost,
      FLAME_SERVICEACCOUNT_DIR: seenBy,
    };
  }

  readonly readKeys = (kind: 'secrets' | 'configmaps', namespace: string, name: string): Record<string, string> | undefined => {
    let object: StoredObject;
    try {
      object = this.ctx.registry.get(kind, namespace, name);
    } catch {
      return undefined;
    }
    const data = (object.data ?? {}) as Record<string, string>;
    if (kind === 'configmaps') return { ...data };
    const decoded: Record<string, string> = {};
    for (const [key, value] of Object.entries(data)) decoded[key] = Buffer.from(value, 'base64').toString('utf8');
    return decoded;
  };

  /** The service-account files, written in the spawner thread (nothing of it on the API server's thread). */
  private prepareSandbox(): Promise<void> {
    const account = this.current.spec?.serviceAccountName ?? 'default';
    return this.ctx.launcher.writeSandbox(this.serviceAccountDir, [
      // No trailing newline: client-node sends the token file as it is.
      { name: 'token', content: this.ctx.serviceAccountToken(this.namespace, account), mode: 0o600 },
      { name: 'ca.crt', content: this.ctx.caPem },
      { name: 'namespace', content: this.namespace },
    ]);
  }

  /** The phase the kubelet computes from its containers (`getPhase`). */
  private phase(): Phase {
    const policy = this.current.spec?.restartPolicy ?? 'Always';
    if (this.containers.some((c) => c.neverStarted)) return 'Pending';
    if (this.containers.some((c) => c.isRunning)) return 'Running';
    if (policy === 'Always') return 'Running';
    const exits = this.containers.map((c) => c.finalExitCode);
    if (exits.some((e) => e === undefined)) return 'Running'; // restarting
    if (exits.every((e) => e === 0)) return 'Succeeded';
    return policy === 'Never' ? 'Failed' : 'Running';
  }

  private publish(): void {
    const statuses = this.containers.map((c) => c.status());
    const phase = this.phase();
    const terminal = phase === 'Succeeded' || phase === 'Failed';
    const unready = statuses.filter((s) => !s.ready).map((s) => s.name);
    this.updateStatus((status) => {
      // The sandbox's addresses come with the first status the kubelet writes for the pod.
      Object.assign(status, this.sandboxAddresses());
      status.startTime ??= this.startTime;
      status.phase = phase;
      setConditions(status, lifecycleConditions(unready, unready.length === 0 && !terminal, terminal ? 'PodCompleted' : undefined));
      status.containerStatuses = statuses;
    });
  }

  private sandboxAddresses(): Pick<NonNullable<Pod['status']>, 'hostIP' | 'hostIPs' | 'podIP' | 'podIPs'> {
    return { hostIP: this.ctx.hostIP, hostIPs: [{ ip: this.ctx.hostIP }], podIP: this.podIP, podIPs: [{ ip: this.podIP }] };
  }

  /** Edits the pod's status alone (not a copy of the whole pod), unless the object is another pod by now. */
  private updateStatus(edit: (status: NonNullable<Pod['status']>) => void): void {
    this.ctx.registry.mutateStatus('pods', this.namespace, this.name, (status, current) => {
      if (current.metadata.uid !== this.uid) return false;
      edit(status as NonNullable<Pod['status']>);
      return true;
    });
  }

  private markNodeLost(options: NodeFailureOptions): void {
    const afterwards = options.afterwards ?? 'fail';
    if (afterwards === 'keep') return;
    this.updateStatus((status) => {
      status.phase = 'Failed';
      status.reason = 'NodeLost';
      status.message = `Node ${this.ctx.nodeName} which was running pod ${this.name} is unresponsive`;
      setConditions(status, [
        { type: 'Ready', status: 'False', reason: 'NodeLost', message: 'Kubelet stopped posting node status.', lastTransitionTime: rfc3339(), lastProbeTime: null as unknown as string },
      ]);
      status.containerStatuses = (status.containerStatuses ?? []).map((s) => ({ ...s, ready: false }));
    });
    if (afterwards === 'delete') {
      try {
        this.ctx.registry.delete('pods', this.namespace, this.name, { gracePeriodSeconds: 0 });
      } catch {
        // already gone
      }
    }
  }

  private finishDeletion(): void {
    if (this.finished) return;
    this.finished = true;
    this.ctx.registry.finishDeletion('pods', this.namespace, this.name);
  }
}
