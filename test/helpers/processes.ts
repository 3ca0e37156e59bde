/**
 * Child OS processes started by tests. Every one is tracked and killed by the root hook after
 * each test, also when the test failed, so no process outlives the run.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

const live = new Set<ChildProcess>();

export interface ChildNode {
  process: ChildProcess;
  /** The first IPC message the child sends once it is ready (e.g. its node name). */
  ready: Promise<Record<string, unknown>>;
  /** Sends a command over IPC and resolves to the child's answer. */
  command(message: Record<string, unknown>, timeout?: number): Promise<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  output(): string;
}

let nextCommand = 1;

/** Forks `script` (a compiled .js file URL) with extra environment variables. */
export function forkChild(script: URL, env: Record<string, string>, readyTimeout = 15_000): ChildNode {
  const child = fork(script, [], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  live.add(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  child.once('exit', () => live.delete(child));
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child ${script.pathname} not ready within ${readyTimeout} ms:\n${out}`)), readyTimeout);
    child.once('message', (m) => {
      clearTimeout(timer);
      resolve(m as Record<string, unknown>);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${code ?? signal}) before it was ready:\n${out}`));
    });
  });
  return {
    process: child,
    ready,
    command(message, timeout = 15_000) {
      const id = nextCommand++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child did not answer ${JSON.stringify(message)} within ${timeout} ms`)), timeout);
        const onMessage = (m: unknown) => {
          const answer = m as Record<string, unknown>;
          if (answer.id !== id) return;
          clearTimeout(timer);
          child.off('message', onMessage);
          resolve(answer);
        };
        child.on('message', onMessage);
        child.send({ ...message, id });
      });
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill(signal);
      await exited;
    },
    output: () => out,
  };
}

/** Kills every child still running; called after each test. */
export async function killAllChildren(): Promise<number> {
  const children = [...live];
  await Promise.all(children.map(async (child) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }));
  return children.length;
}
