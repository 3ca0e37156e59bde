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
import { constants, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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

/**
 * How long a killed process group may take to be gone before its exit is reported all the same.
 * SIGKILL is delivered at once but a process needs CPU to exit, and on a loaded machine that
 * took hundreds of milliseconds: reported at once, a pod was deleted (and gone from
 * `podProcesses()`) while what it ran was still there.
 */
const GROUP_GONE_MS = 2000;
/** How often a killed group is looked at: the kernel tells nothing when a group empties (only a child's exit). */
const GROUP_POLL_MS = 10;

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

/** The state letter and process group of `pid` from /proc, or undefined once it is gone. */
function procStat(pid: number): { state: string; pgrp: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After the command's closing parenthesis: state, ppid, pgrp.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: state ?? '', pgrp: Number(pgrp) };
  } catch {
    return undefined;
  }
}

/** Whether `pid` still runs in group `pgid` (a zombie does not: it has exited and only waits to be reaped). */
function runsIn(pid: number, pgid: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X';
}

/**
 * The members of group `pgid` that still run. The group's orphans are reparented to an init that
 * may reap them late, so `kill(-pgid, 0)` alone would count zombies: /proc tells them apart.
 */
function groupMembers(pgid: number): number[] {
  try {
    process.kill(-pgid, 0);
  } catch {
    return [];
  }
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  return entries.filter((e) => /^\d+$/.test(e)).map(Number).filter((pid) => runsIn(pid, pgid));
}

/**
 * Resolves once nothing of (killed) group `pgid` runs any more, or after {@link GROUP_GONE_MS}.
 * Its members are found once (a group whose every member got SIGKILL gains none), then watched.
 */
async function groupGone(pgid: number): Promise<void> {
  const deadline = Date.now() + GROUP_GONE_MS;
  let members = groupMembers(pgid);
  while (members.length > 0 && Date.now() < deadline) {
    await new Promise<void>((resolve) => setTimeout(resolve, GROUP_POLL_MS));
    members = members.filter((pid) => runsIn(pid, pgid));
  }
}

/** Processes started here and not yet exited, by pid: killed when the launcher closes. */
const live = new Set<number>();
/** Exits not reported yet, waiting for the rest of the process group to be gone: closing waits for them too. */
const ending = new Set<Promise<void>>();
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
      // Reported once the group is gone too: a pod's end means nothing of it runs any more.
      killGroup(child.pid);
      if (child.pid !== undefined) live.delete(child.pid);
      rebalanceSessions();
      const drained = new Promise<void>((resolve) => {
        child.once('close', () => resolve());
        setTimeout(resolve, DRAIN_MS).unref();
      });
      const ended = Promise.all([drained, child.pid === undefined ? undefined : groupGone(child.pid)]).then(() => {
        ending.delete(ended);
        post({ id, type: 'exit', code, signal });
      });
      ending.add(ended);
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
  // This thread's own niceness (on Linux, niceness is per thread; pid 0 is the calling thread):
  // forking a hundred pods costs it CPU that the API server's thread, in the same process, then
  // waits for. Its pods start at this niceness too (a fork keeps the thread's).
  try {
    setPriority(0, POD_NICENESS);
  } catch {
    // not permitted here
  }
  port.on('message', (request: SpawnRequest | SandboxRequest | CloseRequest) => {
    if (request?.op === 'launch') launch(request, (report) => port.postMessage(report));
    else if (request?.op === 'sandbox') void writeSandbox(request, (report) => port.postMessage(report));
    else if (request?.op === 'close') {
      closing = true;
      const groups = [...live];
      for (const pid of groups) killGroup(pid);
      live.clear();
      // Answered once they are gone, so that a stopped cluster has left nothing running.
      void Promise.all([...groups.map(groupGone), ...ending]).then(() => port.postMessage({ id: 0, type: 'closed' } satisfies SpawnReport));
    }
  });
}
