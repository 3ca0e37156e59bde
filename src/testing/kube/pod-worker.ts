/**
 * Runs one pod on the emulated node: the pod's sandbox (its address and service-account folder),
 * its first container as an OS process, restarts with back-off as `restartPolicy` says, and a
 * graceful stop (SIGTERM, grace period, SIGKILL) when the pod is deleted. Status goes back to the
 * API as a real kubelet reports it.
 *
 * Only the first container runs; any other is reported waiting with reason `NotSupportedByEmulator`.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ContainerConfigError, expandReferences, resolveEnvironment } from './env.js';
import type { EventRecorder } from './events.js';
import type { FaultInjector, NodeFailureOptions } from './faults.js';
import type { ImageDefinition, ImageTable } from './images.js';
import { ContainerLog } from './logs.js';
import { imageID, lifecycleConditions, rfc3339, running, setConditions, terminated, waiting, type Termination } from './pod-status.js';
import { findExecutable, type ProcessLauncher } from './process-launcher.js';
import type { Registry } from './registry.js';
import type { Container, ContainerStatus, Pod, StoredObject } from './types.js';

export interface PodWorkerContext {
  registry: Registry;
  images: ImageTable;
  faults: FaultInjector;
  events: EventRecorder;
  launcher: ProcessLauncher;
  nodeName: string;
  hostIP: string;
  apiHost: string;
  apiPort: number;
  caPem: string;
  serviceAccountToken(namespace: string, name: string): string;
  baseEnv: Record<string, string>;
  defaultWorkingDir: string;
  logLimitBytes: number;
  restartBackoffMs: { initial: number; max: number };
  imagePullBackoffMs: number;
}

/**
 * A pod with this annotation set to "true" is run by a process outside the emulator (typically the
 * test process itself, standing in for an application pod): the kubelet reports it Running at
 * once and starts nothing; deleting it completes without waiting.
 */
export const EXTERNAL_POD_ANNOTATION = 'emulator.flame-actors/external';
/** Optional, with {@link EXTERNAL_POD_ANNOTATION}: the pod IP to report (default: a 127.1.x.y address). */
export const POD_IP_ANNOTATION = 'emulator.flame-actors/pod-ip';

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

export class PodWorker {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  private process: ChildProcess | undefined;
  private processExited: Promise<void> = Promise.resolve();
  private startedAt: Date | undefined;
  private restartCount = 0;
  private containerID: string | undefined;
  private lastTermination: Termination | undefined;
  private log: ContainerLog;
  private previousLog: ContainerLog | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private killTimer: NodeJS.Timeout | undefined;
  private killDeadline = Infinity;
  private terminating = false;
  private nodeLost: NodeFailureOptions | undefined;
  private stopped = false;
  private finished = false;
  private readonly container: Container;

  constructor(
    private pod: Pod & StoredObject,
    private readonly ctx: PodWorkerContext,
    readonly podIP: string,
    readonly sandboxDir: string,
  ) {
    this.uid = pod.metadata.uid;
    this.namespace = pod.metadata.namespace ?? 'default';
    this.name = pod.metadata.name;
    this.container = pod.spec!.containers[0]!;
    this.log = new ContainerLog(ctx.logLimitBytes);
  }

  /** The container's output, or the previous run's (`kubectl logs --previous`). */
  logs(previous: boolean): ContainerLog | undefined {
    return previous ? this.previousLog : this.log;
  }

  /** The pid of the container's process while it runs. */
  get pid(): number | undefined {
    return this.process?.pid;
  }

  get containerName(): string {
    return this.container.name;
  }

  /** Whether the container is still to start (for `kubectl logs` on a waiting container). */
  get neverStarted(): boolean {
    return this.startedAt === undefined && this.lastTermination === undefined;
  }

  get serviceAccountDir(): string {
    return join(this.sandboxDir, 'serviceaccount');
  }

  start(): void {
    this.prepareSandbox();
    this.updateStatus((status) => {
      status.hostIP = this.ctx.hostIP;
      status.hostIPs = [{ ip: this.ctx.hostIP }];
      status.podIP = this.podIP;
      status.podIPs = [{ ip: this.podIP }];
      status.startTime = rfc3339();
      setConditions(status, lifecycleConditions(this.containerNames(), false));
      status.containerStatuses = this.containerStatuses(waiting('ContainerCreating'), false);
    });
    this.runContainer();
  }

  /** The pod object changed (e.g. a deletion with a shorter grace period). */
  observe(pod: Pod & StoredObject): void {
    this.pod = pod;
    if (pod.metadata.deletionTimestamp) this.terminate(pod.metadata.deletionGracePeriodSeconds ?? 0);
  }

  /**
   * Graceful stop for a deletion: SIGTERM now, SIGKILL after `graceSeconds`; the object is removed
   * from the API once the process is gone. A later, shorter grace period brings SIGKILL forward.
   */
  terminate(graceSeconds: number): void {
    const deadline = Date.now() + graceSeconds * 1000;
    if (this.terminating) {
      if (deadline < this.killDeadline) this.scheduleKill(graceSeconds);
      return;
    }
    this.terminating = true;
    this.clearTimers();
    if (!this.process) {
      this.finishDeletion();
      return;
    }
    this.ctx.events.record(this.pod, 'Normal', 'Killing', `Stopping container ${this.container.name}`, 'kubelet', this.ctx.nodeName);
    if (graceSeconds <= 0) this.killGroup('SIGKILL');
    else {
      this.signal('SIGTERM');
      this.scheduleKill(graceSeconds);
    }
  }

  /** SIGKILL at once, as when a node dies; then the control plane does as `options.afterwards` says. */
  async killNode(options: NodeFailureOptions): Promise<void> {
    this.nodeLost = options;
    this.clearTimers();
    const exited = this.processExited;
    if (this.process) this.killGroup('SIGKILL');
    await exited;
    await this.markNodeLost(options);
  }

  /** The object is gone (or the cluster stops): kill everything now and clean up. */
  async dispose(): Promise<void> {
    this.stopped = true;
    this.clearTimers();
    if (this.process) this.killGroup('SIGKILL');
    const exited = this.processExited;
    await Promise.race([exited, new Promise<void>((r) => setTimeout(r, 3000).unref())]);
    this.log.end();
    this.ctx.faults.forget(this.uid);
    rmSync(this.sandboxDir, { recursive: true, force: true });
  }

  private prepareSandbox(): void {
    const dir = this.serviceAccountDir;
    mkdirSync(dir, { recursive: true });
    const account = this.pod.spec?.serviceAccountName ?? 'default';
    // No trailing newline: client-node sends the token file as it is (see library-traps §2).
    writeFileSync(join(dir, 'token'), this.ctx.serviceAccountToken(this.namespace, account), { mode: 0o600 });
    writeFileSync(join(dir, 'ca.crt'), this.ctx.caPem);
    writeFileSync(join(dir, 'namespace'), this.namespace);
  }

  private containerNames(): string[] {
    return this.pod.spec!.containers.map((c) => c.name);
  }

  private containerStatuses(state: ContainerStatus['state'], ready: boolean, extra: Partial<ContainerStatus> = {}): ContainerStatus[] {
    return this.pod.spec!.containers.map((c, i): ContainerStatus => {
      if (i > 0) {
        return {
          name: c.name,
          image: c.image ?? '',
          imageID: '',
          ready: false,
          started: false,
          restartCount: 0,
          state: waiting('NotSupportedByEmulator', 'the emulated kubelet runs only the first container of a pod'),
        };
      }
      const status: ContainerStatus = {
        name: c.name,
        image: c.image ?? '',
        imageID: imageID(c.image ?? ''),
        ready,
        started: state?.running !== undefined,
        restartCount: this.restartCount,
        state,
        lastState: this.lastTermination && this.restartCount > 0 ? terminated(this.lastTermination) : {},
        ...extra,
      };
      if (this.process?.pid !== undefined) this.containerID = `emulator://${this.process.pid}`;
      if (this.containerID) status.containerID = this.containerID;
      return status;
    });
  }

  private updateStatus(edit: (status: NonNullable<Pod['status']>) => void): void {
    this.ctx.registry.mutate('pods', this.namespace, this.name, (draft) => {
      if (draft.metadata.uid !== this.uid) return;
      const pod = draft as Pod;
      pod.status ??= {};
      edit(pod.status);
    });
  }

  private imageFor(container: Container): ImageDefinition | undefined {
    return this.ctx.images.resolve(container.image ?? '');
  }

  private runContainer(): void {
    if (this.terminating || this.stopped || this.nodeLost) return;
    const c = this.container;
    if (this.pod.metadata.annotations?.[EXTERNAL_POD_ANNOTATION] === 'true') {
      const started = new Date();
      this.startedAt = started;
      this.updateStatus((status) => {
        status.phase = 'Running';
        setConditions(status, lifecycleConditions(this.containerNames(), this.pod.spec!.containers.length === 1));
        status.containerStatuses = this.containerStatuses(running(started), true);
      });
      return;
    }
    const image = this.imageFor(c);
    const pullFault = this.ctx.faults.podFault(this.pod, 'imagePullFailure');
    if (pullFault || (!image && !c.command?.length)) {
      this.failImagePull(pullFault ? 'emulated image pull failure (fault injected)' : 'not found in the emulator image table (register it, e.g. --image NAME=COMMAND)');
      return;
    }
    this.ctx.events.record(this.pod, 'Normal', 'Pulled', `Container image "${c.image}" already present on machine`, 'kubelet', this.ctx.nodeName);

    let env: Map<string, string>;
    try {
      env = resolveEnvironment(this.pod, c, this.baseEnvironment(image), (kind, ns, name) => this.readKeys(kind, ns, name));
    } catch (error) {
      if (!(error instanceof ContainerConfigError)) throw error;
      this.updateStatus((status) => {
        status.containerStatuses = this.containerStatuses(waiting('CreateContainerConfigError', error.message), false);
      });
      this.ctx.events.record(this.pod, 'Warning', 'Failed', `Error: ${error.message}`, 'kubelet', this.ctx.nodeName);
      return;
    }
    const command = [...(c.command ?? image?.command ?? []), ...(c.args ?? (c.command ? [] : (image?.args ?? [])))].map((part) =>
      expandReferences(part, env),
    );
    const cwd = c.workingDir ?? image?.workingDir ?? this.ctx.defaultWorkingDir;
    const started = new Date();
    this.ctx.events.record(this.pod, 'Normal', 'Created', `Created container ${c.name}`, 'kubelet', this.ctx.nodeName);

    const crash = this.ctx.faults.podFault(this.pod, 'crashOnStart');
    if (crash) {
      this.startedAt = started;
      this.log.append(Buffer.from(`emulated crash at start (fault injected): exit code ${crash.exitCode}\n`));
      this.onExit({ exitCode: crash.exitCode, reason: 'Error', startedAt: started, finishedAt: new Date() });
      return;
    }
    const executable = command.length > 0 ? findExecutable(command[0]!, env.get('PATH'), cwd) : undefined;
    if (!existsSync(cwd) || !executable) {
      const message = !existsSync(cwd)
        ? `failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: chdir to cwd ("${cwd}") set in config.json failed: no such file or directory: unknown`
        : `failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "${command[0] ?? ''}": executable file not found in $PATH: unknown`;
      this.ctx.events.record(this.pod, 'Warning', 'Failed', `Error: ${message}`, 'kubelet', this.ctx.nodeName);
      this.onExit({ exitCode: 128, reason: 'StartError', message, finishedAt: new Date() });
      return;
    }

    const child = this.ctx.launcher.launch({ command, env: Object.fromEntries(env), cwd, serviceAccountDir: this.serviceAccountDir });
    this.process = child;
    const log = this.log;
    child.stdout?.on('data', (chunk: Buffer) => log.append(chunk));
    child.stderr?.on('data', (chunk: Buffer) => log.append(chunk));
    this.processExited = new Promise<void>((resolve) => {
      let done = false;
      child.once('error', (error) => {
        if (done) return;
        done = true;
        this.process = undefined;
        this.onExit({ exitCode: 128, reason: 'StartError', message: error.message, finishedAt: new Date() });
        resolve();
      });
      child.once('exit', (code, signal) => {
        if (done) return;
        done = true;
        // The container runtime kills what is left in the container once its main process is gone.
        this.killGroup('SIGKILL', child.pid);
        this.process = undefined;
        const signalNumber = signal ? (SIGNALS[signal] ?? 0) : undefined;
        const exitCode = code ?? 128 + (signalNumber ?? 0);
        this.onExit({
          exitCode,
          ...(signalNumber !== undefined ? { signal: signalNumber } : {}),
          reason: exitCode === 0 ? 'Completed' : 'Error',
          startedAt: started,
          finishedAt: new Date(),
          containerID: `emulator://${child.pid}`,
        });
        resolve();
      });
    });
    child.once('spawn', () => {
      this.startedAt = started;
      if (this.terminating || this.nodeLost) return;
      this.updateStatus((status) => {
        status.phase = 'Running';
        setConditions(status, lifecycleConditions(this.containerNames(), this.pod.spec!.containers.length === 1));
        status.containerStatuses = this.containerStatuses(running(started), true);
      });
      this.ctx.events.record(this.pod, 'Normal', 'Started', `Started container ${c.name}`, 'kubelet', this.ctx.nodeName);
    });
  }

  private failImagePull(why: string): void {
    const image = this.container.image ?? '';
    const message = `failed to pull and unpack image "${image}": ${why}`;
    this.updateStatus((status) => {
      status.containerStatuses = this.containerStatuses(waiting('ErrImagePull', message), false);
    });
    this.ctx.events.record(this.pod, 'Warning', 'Failed', `Failed to pull image "${image}": ${message}`, 'kubelet', this.ctx.nodeName);
    this.later(this.ctx.imagePullBackoffMs, () => {
      this.updateStatus((status) => {
        status.containerStatuses = this.containerStatuses(waiting('ImagePullBackOff', `Back-off pulling image "${image}"`), false);
      });
      this.ctx.events.record(this.pod, 'Normal', 'BackOff', `Back-off pulling image "${image}"`, 'kubelet', this.ctx.nodeName);
    });
  }

  private baseEnvironment(image: ImageDefinition | undefined): Record<string, string> {
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

  private readKeys(kind: 'secrets' | 'configmaps', namespace: string, name: string): Record<string, string> | undefined {
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
  }

  private onExit(t: Termination): void {
    this.lastTermination = t;
    this.log.end();
    if (this.stopped || this.nodeLost) return;
    const policy = this.pod.spec?.restartPolicy ?? 'Always';
    const restart = !this.terminating && (policy === 'Always' || (policy === 'OnFailure' && t.exitCode !== 0));
    if (!restart) {
      const phase = t.exitCode === 0 ? 'Succeeded' : 'Failed';
      this.updateStatus((status) => {
        status.phase = phase;
        setConditions(status, lifecycleConditions(this.containerNames(), false, 'PodCompleted'));
        status.containerStatuses = this.containerStatuses(terminated(t), false, { lastState: {}, started: false });
      });
      if (this.terminating) this.finishDeletion();
      return;
    }
    this.restartCount++;
    const delay = Math.min(this.ctx.restartBackoffMs.initial * 2 ** (this.restartCount - 1), this.ctx.restartBackoffMs.max);
    const message = `back-off ${formatSeconds(delay)} restarting failed container=${this.container.name} pod=${this.name}_${this.namespace}(${this.uid})`;
    this.updateStatus((status) => {
      if (this.startedAt) status.phase = 'Running';
      setConditions(status, lifecycleConditions(this.containerNames(), false));
      status.containerStatuses = this.containerStatuses(waiting('CrashLoopBackOff', message), false);
    });
    this.ctx.events.record(this.pod, 'Warning', 'BackOff', 'Back-off restarting failed container', 'kubelet', this.ctx.nodeName);
    this.later(delay, () => {
      this.previousLog = this.log;
      this.log = new ContainerLog(this.ctx.logLimitBytes);
      this.runContainer();
    });
  }

  private async markNodeLost(options: NodeFailureOptions): Promise<void> {
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

  private scheduleKill(graceSeconds: number): void {
    if (this.killTimer) clearTimeout(this.killTimer);
    this.killDeadline = Date.now() + graceSeconds * 1000;
    this.killTimer = setTimeout(() => this.killGroup('SIGKILL'), Math.max(0, graceSeconds * 1000));
  }

  /** SIGTERM reaches the container's own process (the wrappers `exec`ed into it), as in a container. */
  private signal(signal: NodeJS.Signals): void {
    const pid = this.process?.pid;
    if (pid === undefined) return;
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }

  /** Signals the whole process group: the container's process and anything it started. */
  private killGroup(signal: NodeJS.Signals, pid = this.process?.pid): void {
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
  }

  private later(ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      action();
    }, ms);
    this.timers.add(timer);
  }

  private clearTimers(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    if (this.killTimer) clearTimeout(this.killTimer);
    this.killTimer = undefined;
  }
}

function formatSeconds(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${Number.isInteger(s) ? s : s.toFixed(1)}s`;
  return `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
}
