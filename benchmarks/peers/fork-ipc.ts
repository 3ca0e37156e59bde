/**
 * The bare baseline: `child_process.fork` and its IPC channel (JSON), one child per worker,
 * calls spread round-robin; see fork-ipc-child.ts for the far side.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setImmediate as turn } from 'node:timers/promises';
import { idleRss, type CallSystem } from './drive.js';

const CHILD = new URL('./fork-ipc-child.js', import.meta.url);

type Reply = { id: number; r: number } | { done: number };

function forkChild(): ChildProcess {
  return fork(CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

async function end(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** `n` forked children answering calls over IPC. */
export async function forkIpcCalls(n: number): Promise<CallSystem> {
  const children = Array.from({ length: n }, forkChild);
  const pending = new Map<number, (r: number) => void>();
  for (const child of children) {
    child.on('message', (m: Reply) => {
      if ('id' in m) {
        pending.get(m.id)?.(m.r);
        pending.delete(m.id);
      }
    });
  }
  let id = 0;
  return {
    pids: children.map((c) => c.pid!),
    call: (a, b) => new Promise<number>((resolve) => {
      const k = id++;
      pending.set(k, resolve);
      children[k % n]!.send({ id: k, a, b });
    }),
    stop: async () => {
      await Promise.all(children.map(end));
    },
  };
}

/** Messages per second from the parent to one child, counted there; one batch per turn. */
export async function forkIpcOneway(messages: number, batch = 1000): Promise<number> {
  const child = forkChild();
  try {
    const done = new Promise<void>((resolve) => child.on('message', (m: Reply) => 'done' in m && resolve()));
    const start = performance.now();
    child.send({ expect: messages });
    for (let i = 0; i < messages;) {
      const end = Math.min(messages, i + batch);
      for (; i < end - 1; i++) child.send({ n: i });
      // The last send of the batch is awaited: Node queues IPC writes without bound otherwise.
      await new Promise<void>((resolve) => child.send({ n: i++ }, () => resolve()));
      await turn();
    }
    await done;
    return messages / ((performance.now() - start) / 1000);
  } finally {
    await end(child);
  }
}

/** fork() to the first call's answer, in ms. */
export async function forkIpcColdStart(): Promise<number> {
  const start = performance.now();
  const child = forkChild();
  try {
    await new Promise<void>((resolve) => {
      child.on('message', (m: Reply) => 'id' in m && resolve());
      child.send({ id: 1, a: 1, b: 2 });
    });
    return performance.now() - start;
  } finally {
    await end(child);
  }
}

/** RSS of a forked child that answered `calls` calls (one by default) and sat idle. */
export const forkIpcIdleRss = (calls = 1): Promise<number> => idleRss(() => forkIpcCalls(1), calls);
