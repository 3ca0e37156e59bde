/**
 * Starts a container's process, in a worker thread (spawner-thread.ts) so that the API server's
 * event loop never waits for one. Three wrappers, each replaced by the next with `exec` so that the
 * container process keeps the pid the kubelet signals:
 *  - `setpriv --pdeathsig KILL`: the process gets SIGKILL if the emulator dies, so no pod outlives it;
 *  - `unshare --mount` + `mount --bind`: the pod's service-account folder appears at the standard
 *    `/var/run/secrets/kubernetes.io/serviceaccount`, in that process only (needs root);
 *  - its own process group (`detached`), so that stopping a pod reaches what it spawned as well.
 * Where a wrapper is not available the process starts without it (and the pod is told where its
 * service-account folder is through `FLAME_SERVICEACCOUNT_DIR`).
 */
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { CloseRequest, SandboxFile, SandboxRequest, SpawnReport, SpawnRequest } from './spawner-thread.js';
import { WorkQueue } from './work-queue.js';

export const SERVICE_ACCOUNT_MOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

export type ServiceAccountMode = 'auto' | 'mount' | 'folder';

export interface LaunchSpec {
  command: string[];
  env: Record<string, string>;
  cwd: string;
  /** The folder holding `token`, `ca.crt` and `namespace` for this pod. */
  serviceAccountDir: string;
}

let mountSupport: boolean | undefined;
let pdeathsigSupport: boolean | undefined;

/** Wrappers are run by absolute path: a pod's own PATH must not decide whether they are found. */
function tool(name: string): string {
  return findExecutable(name, process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', '/') ?? name;
}

/** Whether a private mount namespace with a bind mount works here (root, unshare, mount). */
export function canMountServiceAccount(): boolean {
  if (mountSupport !== undefined) return mountSupport;
  mountSupport = false;
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return mountSupport;
  let probe: string | undefined;
  try {
    mkdirSync(SERVICE_ACCOUNT_MOUNT, { recursive: true });
    probe = mkdtempSync(join(tmpdir(), 'flame-emulator-probe-'));
    writeFileSync(join(probe, 'probe'), 'ok');
    const result = spawnSync(
      tool('unshare'),
      ['--mount', '--propagation', 'private', tool('sh'), '-c', `${tool('mount')} --bind "$0" "$1" && test -f "$1/probe"`, probe, SERVICE_ACCOUNT_MOUNT],
      { stdio: 'ignore', timeout: 5000 },
    );
    mountSupport = result.status === 0;
  } catch {
    mountSupport = false;
  } finally {
    if (probe) rmSync(probe, { recursive: true, force: true });
  }
  return mountSupport;
}

/** Whether `setpriv --pdeathsig` exists here (util-linux). */
export function canSetParentDeathSignal(): boolean {
  if (pdeathsigSupport !== undefined) return pdeathsigSupport;
  if (process.platform !== 'linux') return (pdeathsigSupport = false);
  const result = spawnSync(tool('setpriv'), ['--pdeathsig', 'KILL', 'true'], { stdio: 'ignore', timeout: 5000 });
  pdeathsigSupport = result.status === 0;
  return pdeathsigSupport;
}

/** Where `command` would be found, as execvp looks for it, or undefined (synchronous: for the wrappers, once at start). */
export function findExecutable(command: string, path: string | undefined, cwd: string): string | undefined {
  const candidates = command.includes('/')
    ? [isAbsolute(command) ? command : resolve(cwd, command)]
    : (path ?? '').split(delimiter).filter((d) => d.length > 0).map((d) => join(isAbsolute(d) ? d : resolve(cwd, d), command));
  for (const candidate of candidates) {
    try {
      if (statSync(candidate).isFile()) {
        accessSync(candidate, constants.X_OK);
        return candidate;
      }
    } catch {
      // not this one
    }
  }
  return undefined;
}

/** What a launched pod process tells: its pid, output, and how it ended (or why it never started). */
export interface PodProcessEvents {
  spawn: [pid: number];
  output: [data: Buffer];
  exit: [code: number | null, signal: NodeJS.Signals | null];
  /** The working directory does not exist, or the command is not found: what runc reports as a StartError. */
  refused: [problem: 'cwd' | 'executable'];
  error: [message: string];
}

/**
 * A pod process being started in the spawner thread, then running. Signals sent before it has a
 * pid are kept and delivered as soon as it has one (a pod deleted while starting).
 */
export class PodProcess extends EventEmitter<PodProcessEvents> {
  private processId: number | undefined;
  private pendingSignal: { signal: NodeJS.Signals; group: boolean } | undefined;
  private ended = false;

  get pid(): number | undefined {
    return this.processId;
  }

  /** Whether the process has exited, or never started. */
  get hasEnded(): boolean {
    return this.ended;
  }

  /** Signals the process (`group`: its whole process group, i.e. what it started as well). */
  kill(signal: NodeJS.Signals, group = false): void {
    if (this.ended) return;
    const pid = this.processId;
    if (pid === undefined) {
      if (!this.pendingSignal || signal === 'SIGKILL') this.pendingSignal = { signal, group };
      return;
    }
    try {
      process.kill(group ? -pid : pid, signal);
    } catch {
      try {
        if (group) process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
  }

  /** @internal the launcher reports what the spawner thread says. */
  report(report: SpawnReport): void {
    switch (report.type) {
      case 'spawn':
        this.processId = report.pid;
        this.emit('spawn', report.pid);
        if (this.pendingSignal) this.kill(this.pendingSignal.signal, this.pendingSignal.group);
        return;
      case 'output':
        this.emit('output', Buffer.from(report.data.buffer, report.data.byteOffset, report.data.byteLength));
        return;
      case 'exit':
        this.ended = true;
        this.emit('exit', report.code, report.signal);
        return;
      case 'refused':
        this.ended = true;
        this.emit('refused', report.problem);
        return;
      case 'error':
        this.ended = true;
        this.emit('error', report.message);
        return;
    }
  }
}

export class ProcessLauncher {
  readonly mountsServiceAccount: boolean;
  private readonly pdeathsig: boolean;
  private readonly tools: { unshare: string; sh: string; mount: string; setpriv: string };
  private spawner: Worker | undefined;
  private readonly launching = new Map<number, PodProcess>();
  private readonly sandboxes = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  private nextId = 1;
  /** Set by close(): nothing starts a new spawner thread afterwards. */
  private closed = false;

  /**
   * `work`: where the spawner thread's reports are handled. A MessagePort hands over everything
   * queued in one task, and each report becomes a pod status update (store, watch fan-out,
   * controllers): 100 pods spawning at once made one stretch of 150+ ms that held every API
   * request. Handled from the node's work queue, in order, requests are answered in between.
   */
  constructor(
    mode: ServiceAccountMode,
    private readonly work: WorkQueue = new WorkQueue(),
  ) {
    this.mountsServiceAccount = mode === 'folder' ? false : canMountServiceAccount();
    if (mode === 'mount' && !this.mountsServiceAccount) {
      throw new Error(
        `serviceAccountMode 'mount' needs root and a working 'unshare --mount' to bind the token at ${SERVICE_ACCOUNT_MOUNT}; use 'auto' or 'folder'`,
      );
    }
    this.pdeathsig = canSetParentDeathSignal();
    this.tools = { unshare: tool('unshare'), sh: tool('sh'), mount: tool('mount'), setpriv: tool('setpriv') };
    // Started now, not on the first pod: starting a thread costs the event loop ~20 ms, which
    // would otherwise land in the middle of the first burst of pods.
    this.thread();
  }

  /** The folder the pod's process sees its service-account files in. */
  serviceAccountPathSeenByPod(serviceAccountDir: string): string {
    return this.mountsServiceAccount ? SERVICE_ACCOUNT_MOUNT : serviceAccountDir;
  }

  /** Starts a pod process in the spawner thread; returns at once. */
  launch(spec: LaunchSpec): PodProcess {
    const { unshare, sh, mount, setpriv } = this.tools;
    let argv = [...spec.command];
    if (this.mountsServiceAccount) {
      argv = [
        unshare,
        '--mount',
        '--propagation',
        'private',
        sh,
        '-c',
        `${mount} --bind "$0" "$1" && shift && exec "$@"`,
        spec.serviceAccountDir,
        SERVICE_ACCOUNT_MOUNT,
        ...argv,
      ];
    }
    if (this.pdeathsig) argv = [setpriv, '--pdeathsig', 'KILL', ...argv];
    const id = this.nextId++;
    const launched = new PodProcess();
    if (this.closed) {
      this.work.push(() => launched.report({ id, type: 'error', message: 'the emulated node is stopping' }));
      return launched;
    }
    this.launching.set(id, launched);
    const request: SpawnRequest = { op: 'launch', id, argv, command: spec.command[0] ?? '', path: spec.env.PATH, cwd: spec.cwd, env: spec.env };
    this.thread().postMessage(request);
    return launched;
  }

  /** Writes a pod's sandbox files (`files` in `dir`, created) in the spawner thread; resolves once all are there. */
  writeSandbox(dir: string, files: SandboxFile[]): Promise<void> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('the emulated node is stopping'));
      this.sandboxes.set(id, { resolve, reject });
      this.thread().postMessage({ op: 'sandbox', id, dir, files } satisfies SandboxRequest);
    });
  }

  /** Ends the spawner thread (every pod process still running gets SIGKILL through its parent-death signal). */
  async close(): Promise<void> {
    this.closed = true;
    const spawner = this.spawner;
    this.spawner = undefined;
    this.launching.clear();
    this.failSandboxes('the emulated node is stopping');
    if (!spawner) return;
    // The thread kills what it started first: a process whose parent-death signal is not set yet
    // (setpriv not yet run) would not die with the thread.
    const closed = new Promise<void>((resolve) => {
      spawner.on('message', (report: SpawnReport) => {
        if (report.type === 'closed') resolve();
      });
      spawner.once('exit', () => resolve());
      setTimeout(resolve, 3000).unref();
    });
    spawner.postMessage({ op: 'close' } satisfies CloseRequest);
    await closed;
    await spawner.terminate();
  }

  private thread(): Worker {
    if (this.spawner) return this.spawner;
    // Plain Node options: the emulator's own (`--input-type`, loaders, inspector) mean nothing to it.
    const spawner = new Worker(new URL('./spawner-thread.js', import.meta.url), { execArgv: [] });
    // The thread never keeps the process alive on its own; the cluster's stop() closes it.
    spawner.unref();
    spawner.on('message', (report: SpawnReport) => {
      if (report.type === 'closed') return;
      this.work.push(() => this.deliver(report));
    });
    spawner.on('error', (error) => {
      // A crashed spawner thread: every process it was watching is reported failed.
      // Queued behind what the thread said before it failed.
      for (const id of this.launching.keys()) {
        const report: SpawnReport = { id, type: 'error', message: `the emulator's process spawner failed: ${error.message}` };
        this.work.push(() => this.deliver(report));
      }
      this.failSandboxes(`the emulator's process spawner failed: ${error.message}`);
      if (this.spawner === spawner) this.spawner = undefined;
    });
    this.spawner = spawner;
    return spawner;
  }

  private failSandboxes(why: string): void {
    for (const pending of this.sandboxes.values()) pending.reject(new Error(why));
    this.sandboxes.clear();
  }

  private deliver(report: SpawnReport): void {
    if (report.type === 'closed') return;
    if (report.type === 'sandbox') {
      const pending = this.sandboxes.get(report.id);
      this.sandboxes.delete(report.id);
      if (report.error === undefined) pending?.resolve();
      else pending?.reject(new Error(report.error));
      return;
    }
    const target = this.launching.get(report.id);
    if (!target) return;
    if (report.type === 'exit' || report.type === 'refused' || report.type === 'error') this.launching.delete(report.id);
    target.report(report);
  }
}
