/**
 * ProcessBackend, the embedded default: every runner is a child OS process with its own node
 * on its own loopback address (127.2.x.y), exactly as a pod has its own POD_IP. No cluster needed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { BootError } from '../../errors.js';
import { runnerEntry } from './runner-entry.js';
import type { Backend, BackendContext, RunnerInstance, RunnerSpec } from '../../flame/backend.js';
import { APP_ROOT_ENV, appRoot } from '../../app-root.js';
import { OptionReader } from '../../validate.js';
import { loaderFlags } from './exec-argv.js';

export interface ProcessBackendOptions {
  /**
   * Command starting a runner. Default: this Node binary, with the loader flags this process
   * runs with (`--import`, `--loader`, `--require`, `--conditions`, `--experimental-*`), running
   * flame-actors' runner entry point.
   */
  command?: string[];
  /** Extra Node flags of the default command. Default `['--v8-pool-size=1']` (see below). */
  execArgv?: string[];
  /** Extra environment for runners: variable names to string values. */
  env?: Record<string, string>;
  /** Working directory of runners. Default: this process's. (Bare imports resolve from the app's root, not from it.) */
  cwd?: string;
  /** Forward runners' stdout/stderr to this process's ('inherit', default) or drop them ('ignore'). */
  stdio?: 'inherit' | 'ignore';
}

interface ProcessRunner extends RunnerInstance {
  child: ChildProcess;
  shutdownTimeout: number;
  exited: Promise<void>;
}

/** How long an exit is waited for after SIGKILL (a process stuck in the kernel may take a while). */
const KILL_GRACE = 2000;

export { runnerEntry } from './runner-entry.js';

/**
 * Runners are many, mostly idle, and booted on a caller's critical path: one V8 background
 * thread instead of four keeps an idle runner about 3 MB smaller (60.2 -> 57.0 MB), at no cost
 * to a call's latency. Module detection stays as in the parent (turning it off saved ~20 ms of
 * boot, but broke ESM files of the app without "type": "module" that load fine in the parent).
 */
const RUNNER_EXEC_ARGV = ['--v8-pool-size=1'];
/** Variables of the parent that must not leak into a runner's identity. */
const IDENTITY_VARS = ['FLAME_NODE_NAME', 'RELEASE_NODE', 'FLAME_PARENT', 'POD_IP', 'FLAME_PORT'];
const STDERR_TAIL = 2048;

let nextAddress = 0;
/** A fresh loopback address per runner: 127.2.0.1, 127.2.0.2, ... (the whole 127/8 is local). */
function loopbackAddress(): string {
  const n = nextAddress++ % (250 * 250);
  return `127.2.${Math.floor(n / 250)}.${(n % 250) + 1}`;
}

export class ProcessBackend implements Backend {
  readonly name = 'process';
  readonly #command: string[];
  readonly #env: Record<string, string>;
  readonly #cwd: string | undefined;
  readonly #stdio: 'inherit' | 'ignore';
  readonly #runners = new Set<ProcessRunner>();
  #context: BackendContext | undefined;

  constructor(options: ProcessBackendOptions = {}) {
    const r = new OptionReader('new ProcessBackend', options, ['command', 'execArgv', 'env', 'cwd', 'stdio']);
    const command = r.raw('command');
    if (command !== undefined && (!Array.isArray(command) || command.length === 0 || !command.every((c) => typeof c === 'string' && c !== ''))) {
      r.fail('command', 'a non-empty array of strings, none empty, e.g. [process.execPath, "dist/runner.js"]');
    }
    const execArgv = r.raw('execArgv');
    if (execArgv !== undefined && (!Array.isArray(execArgv) || !execArgv.every((c) => typeof c === 'string' && c.startsWith('-')))) {
      r.fail('execArgv', 'an array of Node flags, e.g. ["--max-old-space-size=512"]');
    }
    if (command !== undefined && execArgv !== undefined) r.fail('execArgv', 'left out when "command" is given (put the flags in the command)');
    const env = r.raw('env');
    if (env !== undefined && !isStringRecord(env)) {
      r.fail('env', 'an object of variable names to string values, e.g. { LOG_LEVEL: "debug" }');
    }
    this.#command = (command as string[] | undefined) ??
      [process.execPath, ...loaderFlags(), ...((execArgv as string[] | undefined) ?? RUNNER_EXEC_ARGV), runnerEntry()];
    this.#env = { [APP_ROOT_ENV]: appRoot(), ...(env as Record<string, string> | undefined) };
    this.#cwd = r.optionalString('cwd');
    this.#stdio = r.oneOf('stdio', 'inherit', ['inherit', 'ignore'] as const);
  }

  async init(context: BackendContext): Promise<void> {
    this.#context = context;
  }

  async boot(spec: RunnerSpec, signal: AbortSignal): Promise<RunnerInstance> {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of IDENTITY_VARS) delete env[name];
    Object.assign(env, this.#env, spec.env, { POD_IP: loopbackAddress(), FLAME_PORT: '0' });
    const [file, ...args] = this.#command;
    const child = spawn(file!, args, { env, cwd: this.#cwd, stdio: ['ignore', this.#stdio === 'inherit' ? 'inherit' : 'ignore', 'pipe'] });
    let tail = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      if (this.#stdio === 'inherit') process.stderr.write(chunk);
      tail = (tail + chunk.toString()).slice(-STDERR_TAIL);
    });
    // A process that never started (ENOENT, EACCES) emits 'error' and 'close' but never 'exit':
    // the first of 'exit' and 'close' ends it, so nothing waits on an exit that cannot come.
    const exited = new Promise<string>((resolve) => {
      child.once('exit', (code, sig) => resolve(sig ? `was killed by ${sig}` : `exited with code ${code}`));
      child.once('close', (code, sig) => resolve(sig ? `was killed by ${sig}` : `exited with code ${code}`));
    });
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (error) => reject(new BootError(`cannot start runner process ${this.#command.join(' ')}: ${error.message}`, { cause: error })));
    });
    spawned.catch(() => {});
    const runner: ProcessRunner = { id: spec.id, description: `pid ${child.pid} on ${env.POD_IP}`, child, exited: exited.then(() => {}), shutdownTimeout: spec.shutdownTimeout };
    this.#runners.add(runner);
    void exited.then((how) => {
      this.#runners.delete(runner);
      if (child.pid === undefined) return; // never started: boot() rejects with the spawn error
      const why = errorLine(tail);
      this.#context?.runnerExited(spec.id, `runner process ${child.pid} ${how}${why ? `: ${why}` : ''}`);
    });
    await spawned;
    signal.addEventListener('abort', () => void this.shutdown(runner), { once: true });
    return runner;
  }

  /** SIGTERM (the runner drains), then SIGKILL after its shutdownTimeout plus a second. */
  async shutdown(instance: RunnerInstance): Promise<void> {
    const runner = instance as ProcessRunner;
    const { child } = runner;
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), runner.shutdownTimeout + 1000);
    await bounded(runner.exited, runner.shutdownTimeout + 1000 + KILL_GRACE);
    clearTimeout(timer);
  }

  /** SIGKILLs what is left; resolves within a few seconds whatever state the processes are in. */
  async dispose(): Promise<void> {
    await Promise.all([...this.#runners].map((r) => {
      if (r.child.pid !== undefined) r.child.kill('SIGKILL');
      return bounded(r.exited, KILL_GRACE);
    }));
    this.#runners.clear();
  }
}

function isStringRecord(value: unknown): value is Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return false;
  return Object.entries(value).every(([name, v]) => name !== '' && !name.includes('=') && typeof v === 'string');
}

/** Resolves when `promise` does or after `ms`, whichever comes first. */
function bounded(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => clearTimeout(timer));
}

/**
 * The line that says why a runner died, from the end of its stderr: a line of ours (`flame
 * runner: ...`), else Node's own report of the fatal error (`TypeError: ...`, `FATAL ERROR:
 * ...`, `[UnhandledPromiseRejection: ...]`), else the last line that is not a stack frame nor
 * Node's version banner.
 */
export function errorLine(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim() !== '');
  const last = (test: (line: string) => boolean) => [...lines].reverse().find(test);
  const ours = last((l) => l.startsWith('flame runner: '));
  if (ours) return ours.slice('flame runner: '.length);
  const fatal = last((l) => /^(\[?[A-Z]\w*(Error|Exception|Rejection)\b|FATAL ERROR:|Error\b)/.test(l));
  if (fatal) return fatal;
  return lines.filter((l) => !/^\s+at /.test(l) && !/^Node\.js v\d/.test(l) && l.trim() !== '^').at(-1) ?? '';
}
