/**
 * The worker thread that starts pod processes, so that the API server's event loop never blocks
 * on them: Node's `spawn` waits (synchronously) until the child has `exec`ed, which on a busy
 * machine is tens of milliseconds per pod, and the checks before it (does the working directory
 * exist, where is the command on PATH) are file-system calls. Here they are all asynchronous or
 * off the main thread; output, the pid and the exit come back as messages.
 *
 * The pod processes are children of this thread: `setpriv --pdeathsig KILL` ties them to it, so
 * they are killed when the thread ends (the launcher closes) or the emulator dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { access, mkdir, stat, writeFile } from 'node:fs/promises';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { parentPort } from 'node:worker_threads';

/** Sent when the launcher closes: kill every process group started here, refuse new launches, answer `closed`. */
export interface CloseRequest {
  op: 'close';
}

export interface SpawnRequest {
  op: 'launch';
  id: number;
  /** What runs, wrappers included. */
  argv: string[];
  /** The container's own command, looked up as execvp would with the container's PATH. */
  command: string;
  path: string | undefined;
  cwd: string;
  env: Record<string, string>;
}

/** Writes a pod's sandbox files (its service-account folder), answered with a `sandbox` report. */
export interface SandboxRequest {
  op: 'sandbox';
  id: number;
  dir: string;
  files: SandboxFile[];
}

export interface SandboxFile {
  name: string;
  content: string;
  mode?: number;
}

export type SpawnReport =
  | { id: number; type: 'sandbox'; error?: string }
  | { id: number; type: 'refused'; problem: 'cwd' | 'executable' }
  | { id: number; type: 'spawn'; pid: number }
  | { id: number; type: 'output'; data: Uint8Array }
  | { id: number; type: 'exit'; code: number | null; signal: NodeJS.Signals | null }
  | { id: number; type: 'error'; message: string }
  | { id: 0; type: 'closed' };

/** How long output may still drain after the main process exits (its group is killed first). */
const DRAIN_MS = 300;

async function isExecutableFile(candidate: string): Promise<boolean> {
  try {
    if (!(await stat(candidate)).isFile()) return false;
    await access(candidate, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where `command` would be found, as execvp looks for it, or undefined. */
export async function findExecutableAsync(command: string, path: string | undefined, cwd: string): Promise<string | undefined> {
  const candidates = command.includes('/')
    ? [isAbsolute(command) ? command : resolve(cwd, command)]
    : (path ?? '').split(delimiter).filter((d) => d.length > 0).map((d) => join(isAbsolute(d) ? d : resolve(cwd, d), command));
  for (const candidate of candidates) if (await isExecutableFile(candidate)) return candidate;
  return undefined;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Pods run at a lower CPU priority than the emulator: on one machine, a hundred pods booting
 * at once would otherwise starve the API server of CPU (on a real cluster the control plane has
 * its own nodes). Best effort: where it is not allowed, the pod runs at normal priority.
 */
export const POD_NICENESS = 10;

function lowerPriority(pid: number): void {
  try {
    setPriority(pid, POD_NICENESS);
  } catch {
    // not permitted here
  }
}

/**
 * Where the kernel shares the CPU between sessions first (`sched_autogroup_enabled`, on by default
 * in many kernels), a task's niceness only counts inside its session, and each pod is a session of
 * its own (its process group comes with one): 100 booting pods had 100 shares of the CPU against
 * the API server's one (it ran 15% of the time while they started). A node's pods share one
 * cgroup on a real node; here their sessions are niced together so that, all running pods taken
 * together, they weigh about one session: one pod runs at full weight (a pod alone boots as fast
 * as a bare process, whatever else loads the machine), 100 at the lowest (each weight step is
 * 1.25x, so niceness log1.25(N)).
 */
function sessionNiceness(pods: number): number {
  return pods <= 1 ? 0 : Math.min(19, Math.round(Math.log(pods) / Math.log(1.25)));
}

let podSessionsNiceness = 0;

function setSessionNiceness(pid: number, niceness: number): void {
  try {
    writeFileSync(`/proc/${pid}/autogroup`, String(niceness));
  } catch {
    // no autogroups here, the pod is gone, or raising a priority is not permitted
  }
}

/** A pod started (`started`) or ended: every pod session gets the niceness for the new count. */
function rebalanceSessions(started?: number): void {
  if (process.platform !== 'linux') return;
  const niceness = sessionNiceness(live.size);
  if (niceness !== podSessionsNiceness) {
    podSessionsNiceness = niceness;
    for (const pid of live) setSessionNiceness(pid, niceness);
  } else if (started !== undefined) setSessionNiceness(started, niceness);
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // the group is gone already
  }
}

/** Processes started here and not yet exited, by pid: killed when the launcher closes. */
const live = new Set<number>();
let closing = false;

function launch(request: SpawnRequest, post: (report: SpawnReport) => void): void {
  const { id } = request;
  void (async () => {
    if (!(await isDirectory(request.cwd))) return post({ id, type: 'refused', problem: 'cwd' });
    if (!(await findExecutableAsync(request.command, request.path, request.cwd))) return post({ id, type: 'refused', problem: 'executable' });
    if (closing) return post({ id, type: 'error', message: 'the emulated node is stopping' });
    let child: ChildProcess;
    try {
      child = spawn(request.argv[0]!, request.argv.slice(1), { cwd: request.cwd, env: request.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      return post({ id, type: 'error', message: error instanceof Error ? error.message : String(error) });
    }
    // Known from here on (not only from 'spawn', a tick later), so that a close in between kills it too.
    if (child.pid !== undefined) live.add(child.pid);
    let settled = false;
    const forward = (chunk: Buffer): void => post({ id, type: 'output', data: chunk });
    child.stdout?.on('data', forward);
    child.stderr?.on('data', forward);
    child.once('spawn', () => {
      live.add(child.pid!);
      lowerPriority(child.pid!);
      rebalanceSessions(child.pid!);
      post({ id, type: 'spawn', pid: child.pid! });
    });
    child.once('error', (error) => {
      if (settled) return;
      settled = true;
      post({ id, type: 'error', message: error.message });
    });
    child.once('exit', (code, signal) => {
      if (settled) return;
      settled = true;
      // The container runtime kills what is left in the container once its main process is gone.
      killGroup(child.pid);
      if (child.pid !== undefined) live.delete(child.pid);
      rebalanceSessions();
      let reported = false;
      const report = (): void => {
        if (reported) return;
        reported = true;
        post({ id, type: 'exit', code, signal });
      };
      child.once('close', report);
      setTimeout(report, DRAIN_MS).unref();
    });
  })();
}

/**
 * The kubelet's sandbox files are written here too: a hundred pods make a few hundred file calls,
 * whose completions arrive on the API server's thread in batches and held it for tens of
 * milliseconds each time.
 */
async function writeSandbox(request: SandboxRequest, post: (report: SpawnReport) => void): Promise<void> {
  try {
    await mkdir(request.dir, { recursive: true });
    for (const file of request.files) await writeFile(join(request.dir, file.name), file.content, file.mode === undefined ? {} : { mode: file.mode });
    post({ id: request.id, type: 'sandbox' });
  } catch (error) {
    post({ id: request.id, type: 'sandbox', error: error instanceof Error ? error.message : String(error) });
  }
}

if (parentPort) {
  const port = parentPort;
  port.on('message', (request: SpawnRequest | SandboxRequest | CloseRequest) => {
    if (request?.op === 'launch') launch(request, (report) => port.postMessage(report));
    else if (request?.op === 'sandbox') void writeSandbox(request, (report) => port.postMessage(report));
    else if (request?.op === 'close') {
      closing = true;
      for (const pid of live) killGroup(pid);
      live.clear();
      port.postMessage({ id: 0, type: 'closed' } satisfies SpawnReport);
    }
  });
}
