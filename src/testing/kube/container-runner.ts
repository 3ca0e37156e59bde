/**
 * One container of a pod on the emulated node: its process (started in the spawner thread), its
 * state as the kubelet reports it (waiting / running / terminated, restartCount, lastState), its
 * logs (the current instance and the previous one, for `kubectl logs --previous`), restarts with
 * back-off as `restartPolicy` says, and a restart when its image is changed by an update.
 */
import { expandReferences, ContainerConfigError, resolveEnvironment, type ObjectKeyReader } from './env.js';
import type { ImageDefinition } from './images.js';
import { ContainerLog } from './logs.js';
import { imageID, running, terminated, waiting, type Termination } from './pod-status.js';
import type { PodProcess } from './process-launcher.js';
import type { PodWorkerContext } from './pod-worker-context.js';
import type { Container, ContainerStatus, Pod, StoredObject } from './types.js';

/** What a container needs from its pod. */
export interface ContainerHost {
  readonly ctx: PodWorkerContext;
  readonly pod: Pod & StoredObject;
  /** The pod as the kubelet runs it: its sandbox's addresses in its status, written to the API or not yet. */
  readonly sandboxedPod: Pod & StoredObject;
  readonly serviceAccountDir: string;
  /** Whether the pod is being deleted, its node lost, or the kubelet disposing of it: no more starts. */
  readonly halted: boolean;
  /** Whether the pod is being deleted (no restart after an exit). */
  readonly terminating: boolean;
  baseEnvironment(image: ImageDefinition | undefined): Record<string, string>;
  readKeys: ObjectKeyReader;
  /** The container's state changed: publish the pod's status. */
  changed(): void;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

const RUNC_PREFIX = 'failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process:';

type State = { kind: 'waiting'; reason: string; message?: string } | { kind: 'running'; startedAt: Date } | { kind: 'terminated'; termination: Termination };

export class ContainerRunner {
  private state: State = { kind: 'waiting', reason: 'ContainerCreating' };
  private process: PodProcess | undefined;
  private restarts = 0;
  private lastTermination: Termination | undefined;
  private containerID: string | undefined;
  private log: ContainerLog;
  private terminatedLog: ContainerLog | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private killTimer: NodeJS.Timeout | undefined;
  private killDeadline = Infinity;
  /** Set when the spec changed under a running container: it restarts as soon as it is gone. */
  private restartForChange = false;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    private spec: Container,
    private readonly host: ContainerHost,
  ) {
    this.log = new ContainerLog(host.ctx.logLimitBytes);
  }

  get name(): string {
    return this.spec.name;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** Whether the container has a live process (or one being started). */
  get alive(): boolean {
    return this.process !== undefined;
  }

  get isRunning(): boolean {
    return this.state.kind === 'running';
  }

  /** Waiting and never run: what makes a pod Pending. */
  get neverStarted(): boolean {
    return this.state.kind === 'waiting' && this.lastTermination === undefined;
  }

  /** Terminated (and not restarting), with its exit code. */
  get finalExitCode(): number | undefined {
    return this.state.kind === 'terminated' ? this.state.termination.exitCode : undefined;
  }

  /** The reason it waits (for `kubectl logs` on a container that has not started). */
  get waitingReason(): string | undefined {
    return this.state.kind === 'waiting' ? this.state.reason : undefined;
  }

  /**
   * The log `kubectl logs` reads, as the real kubelet picks it: `previous` is the instance of
   * `lastState`; otherwise the running or terminated instance, or (waiting in back-off) the last
   * terminated one.
   */
  logs(previous: boolean): ContainerLog | undefined {
    if (previous) return this.restarts > 0 ? this.terminatedLog : undefined;
    if (this.state.kind === 'waiting') return this.lastTermination ? this.terminatedLog : undefined;
    return this.log;
  }

  status(): ContainerStatus {
    const state =
      this.state.kind === 'running'
        ? running(this.state.startedAt)
        : this.state.kind === 'terminated'
          ? terminated(this.state.termination)
          : waiting(this.state.reason, this.state.message);
    const status: ContainerStatus = {
      name: this.spec.name,
      image: this.spec.image ?? '',
      imageID: this.state.kind === 'waiting' && this.lastTermination === undefined ? '' : imageID(this.spec.image ?? ''),
      ready: this.state.kind === 'running',
      started: this.state.kind === 'running',
      restartCount: this.restarts,
      state,
      lastState: this.lastTermination && this.restarts > 0 && this.state.kind !== 'terminated' ? terminated(this.lastTermination) : {},
    };
    if (this.containerID) status.containerID = this.containerID;
    return status;
  }

  /** Reported running at once, no process (a pod run outside the emulator). */
  runExternally(): void {
    this.state = { kind: 'running', startedAt: new Date() };
  }

  start(): void {
    if (this.host.halted) return;
    const { ctx, pod } = this.host;
    const c = this.spec;
    const image = ctx.images.resolve(c.image ?? '');
    const pullFault = ctx.faults.podFault(pod, 'imagePullFailure');
    if (pullFault || (!image && !c.command?.length)) {
      this.failImagePull(pullFault ? 'emulated image pull failure (fault injected)' : 'not found in the emulator image table (register it, e.g. --image NAME=COMMAND)');
      return;
    }
    this.event('Normal', 'Pulled', `Container image "${c.image}" already present on machine`);
    let env: Map<string, string>;
    try {
      env = resolveEnvironment(this.host.sandboxedPod, c, this.host.baseEnvironment(image), this.host.readKeys, this.allocatable());
    } catch (error) {
      if (!(error instanceof ContainerConfigError)) throw error;
      this.event('Warning', 'Failed', `Error: ${error.message}`);
      this.setState({ kind: 'waiting', reason: 'CreateContainerConfigError', message: error.message });
      return;
    }
    const command = [...(c.command ?? image?.command ?? []), ...(c.args ?? (c.command ? [] : (image?.args ?? [])))].map((part) => expandReferences(part, env));
    const cwd = c.workingDir ?? image?.workingDir ?? ctx.defaultWorkingDir;
    const started = new Date();
    this.event('Normal', 'Created', `Created container ${c.name}`);

    const crash = ctx.faults.podFault(pod, 'crashOnStart');
    if (crash) {
      this.log.append(Buffer.from(`emulated crash at start (fault injected): exit code ${crash.exitCode}\n`));
      this.onExit({ exitCode: crash.exitCode, reason: 'Error', startedAt: started, finishedAt: new Date() });
      return;
    }

    const child = ctx.launcher.launch({ command, env: Object.fromEntries(env), cwd, serviceAccountDir: this.host.serviceAccountDir });
    this.process = child;
    const log = this.log;
    let resolveExited!: () => void;
    this.exited = new Promise<void>((resolve) => (resolveExited = resolve));
    const gone = (t: Termination): void => {
      if (this.process === child) this.process = undefined;
      resolveExited();
      this.onExit(t);
    };
    child.on('output', (chunk) => log.append(chunk));
    child.once('refused', (problem) => {
      const message =
        problem === 'cwd'
          ? `${RUNC_PREFIX} chdir to cwd ("${cwd}") set in config.json failed: no such file or directory: unknown`
          : `${RUNC_PREFIX} exec: "${command[0] ?? ''}": executable file not found in $PATH: unknown`;
      this.event('Warning', 'Failed', `Error: ${message}`);
      gone({ exitCode: 128, reason: 'StartError', message, finishedAt: new Date() });
    });
    child.once('error', (message) => gone({ exitCode: 128, reason: 'StartError', message, finishedAt: new Date() }));
    child.once('exit', (code, signal) => {
      const signalNumber = signal ? (SIGNALS[signal] ?? 0) : undefined;
      const exitCode = code ?? 128 + (signalNumber ?? 0);
      gone({
        exitCode,
        ...(signalNumber !== undefined ? { signal: signalNumber } : {}),
        reason: exitCode === 0 ? 'Completed' : 'Error',
        startedAt: started,
        finishedAt: new Date(),
        containerID: `emulator://${child.pid}`,
      });
    });
    child.once('spawn', (pid) => {
      this.containerID = `emulator://${pid}`;
      if (this.host.halted) return;
      this.event('Normal', 'Started', `Started container ${c.name}`);
      this.setState({ kind: 'running', startedAt: started });
    });
  }

  /**
   * The pod was updated. A changed image is a changed container definition: the kubelet kills
   * the container (SIGTERM, then SIGKILL after the pod's grace period) and starts it again with
   * the new image whatever the restart policy, counting a restart.
   */
  observe(spec: Container): void {
    const changed = spec.image !== this.spec.image;
    this.spec = spec;
    if (!changed || this.host.halted) return;
    if (this.process) {
      this.event('Normal', 'Killing', `Container ${spec.name} definition changed, will be restarted`);
      this.restartForChange = true;
      this.stop(this.host.pod.spec?.terminationGracePeriodSeconds ?? 30);
    } else if (this.state.kind !== 'running') {
      this.clearTimers();
      this.restartNow();
    }
  }

  /** SIGTERM now, SIGKILL after `graceSeconds`; a later, shorter grace brings SIGKILL forward. */
  stop(graceSeconds: number): void {
    this.clearRestart();
    if (!this.process) return;
    const deadline = Date.now() + graceSeconds * 1000;
    if (this.killTimer && deadline >= this.killDeadline) return;
    if (graceSeconds <= 0) {
      this.process.kill('SIGKILL', true);
      return;
    }
    if (!this.killTimer) this.process.kill('SIGTERM');
    if (this.killTimer) clearTimeout(this.killTimer);
    this.killDeadline = deadline;
    this.killTimer = setTimeout(() => this.process?.kill('SIGKILL', true), graceSeconds * 1000);
  }

  /** SIGKILL to the container's process group now; resolves once it is gone (or after 3 s). */
  async kill(): Promise<void> {
    this.clearTimers();
    const exited = this.exited;
    this.process?.kill('SIGKILL', true);
    await Promise.race([exited, new Promise<void>((r) => setTimeout(r, 3000).unref())]);
  }

  dispose(): void {
    this.clearTimers();
    this.log.end();
    this.terminatedLog?.end();
  }

  private onExit(t: Termination): void {
    this.lastTermination = t;
    this.log.end();
    if (this.killTimer) clearTimeout(this.killTimer);
    this.killTimer = undefined;
    this.killDeadline = Infinity;
    if (this.restartForChange && !this.host.halted) {
      this.restartForChange = false;
      this.restarts++;
      this.terminatedLog = this.log;
      this.restartNow();
      return;
    }
    const policy = this.host.pod.spec?.restartPolicy ?? 'Always';
    const restart = !this.host.halted && !this.host.terminating && (policy === 'Always' || (policy === 'OnFailure' && t.exitCode !== 0));
    this.terminatedLog = this.log;
    if (!restart) {
      this.setState({ kind: 'terminated', termination: t });
      return;
    }
    this.restarts++;
    const backoff = this.host.ctx.restartBackoffMs;
    const delay = Math.min(backoff.initial * 2 ** (this.restarts - 1), backoff.max);
    const pod = this.host.pod;
    const message = `back-off ${formatSeconds(delay)} restarting failed container=${this.spec.name} pod=${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})`;
    this.event('Warning', 'BackOff', 'Back-off restarting failed container');
    this.setState({ kind: 'waiting', reason: 'CrashLoopBackOff', message });
    this.later(delay, () => this.restartNow());
  }

  private restartNow(): void {
    this.log = new ContainerLog(this.host.ctx.logLimitBytes);
    this.state = { kind: 'waiting', reason: 'ContainerCreating' };
    this.start();
  }

  private failImagePull(why: string): void {
    const image = this.spec.image ?? '';
    const message = `failed to pull and unpack image "${image}": ${why}`;
    this.event('Warning', 'Failed', `Failed to pull image "${image}": ${message}`);
    this.setState({ kind: 'waiting', reason: 'ErrImagePull', message });
    this.later(this.host.ctx.imagePullBackoffMs, () => {
      this.event('Normal', 'BackOff', `Back-off pulling image "${image}"`);
      this.setState({ kind: 'waiting', reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}"` });
    });
  }

  /** The node's allocatable resources, what `resourceFieldRef` gives for a limit that is not set. */
  private allocatable(): Record<string, string> {
    try {
      const node = this.host.ctx.registry.get('nodes', '', this.host.ctx.nodeName) as StoredObject & { status?: { allocatable?: Record<string, string> } };
      return node.status?.allocatable ?? {};
    } catch {
      return {};
    }
  }

  /** Events about a change are recorded before it (the status write comes after them, from the work queue). */
  private setState(state: State): void {
    this.state = state;
    this.host.changed();
  }

  private event(type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.host.ctx.events.record(this.host.pod, type, reason, message, 'kubelet', this.host.ctx.nodeName);
  }

  private later(ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      action();
    }, ms);
    this.timers.add(timer);
  }

  private clearRestart(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private clearTimers(): void {
    this.clearRestart();
    if (this.killTimer) clearTimeout(this.killTimer);
    this.killTimer = undefined;
  }
}

function formatSeconds(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${Number.isInteger(s) ? s : s.toFixed(1)}s`;
  return `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
}
