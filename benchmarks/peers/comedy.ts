/**
 * comedy (npm `comedy`): actors in forked processes (`mode: 'forked'`), `clusterSize` of them
 * behind one ref with comedy's round-robin balancer; `sendAndReceive` is its call.
 */
import { createSystem, type ActorRef, type ActorSystem } from 'comedy';
import { setImmediate as turn } from 'node:timers/promises';
import { idleRss, killLeftovers, type CallSystem } from './drive.js';

/**
 * The actor. comedy ships a class definition to the forked process as source text, so it
 * must be self-contained (no imports, no captured variables).
 */
class PeerActor {
  count = 0;
  target = -1;
  resolve: ((n: number) => void) | undefined;

  add(a: number, b: number): number {
    return a + b;
  }

  pid(): number {
    return process.pid;
  }

  /** Answers once `n` `tick`s have arrived (comedy does not wait for it before the next message). */
  expect(n: number): Promise<number> {
    this.count = 0;
    this.target = n;
    return new Promise((resolve) => (this.resolve = resolve));
  }

  tick(): void {
    if (++this.count === this.target) this.resolve?.(this.count);
  }
}

/** comedy logs to stdout by default, which would corrupt `--json` output. */
class QuietLogger {
  debug(): void {}
  info(): void {}
  warn(): void {}
  error(): void {}
}

function system(): ActorSystem {
  return createSystem({ logger: QuietLogger });
}

async function forked(sys: ActorSystem, clusterSize: number): Promise<{ actor: ActorRef; pids: number[] }> {
  const root = await sys.rootActor();
  const actor = await root.createChild(PeerActor, { mode: 'forked', clusterSize });
  const pids = (await actor.broadcastAndReceive('pid')) as number[];
  return { actor, pids };
}

/** `n` forked comedy actors behind one ref. */
export async function comedyCalls(n: number): Promise<CallSystem> {
  const sys = system();
  let pids: number[] = [];
  try {
    const started = await forked(sys, n);
    pids = started.pids;
    const actor = started.actor;
    return {
      pids,
      call: (a, b) => actor.sendAndReceive('add', a, b) as Promise<number>,
      stop: async () => {
        try {
          await sys.destroy();
        } finally {
          killLeftovers(pids);
        }
      },
    };
  } catch (e) {
    await sys.destroy().catch(() => undefined);
    killLeftovers(pids);
    throw e;
  }
}

/** One-way `send`s to one forked actor, counted there; one batch per turn. */
export async function comedyOneway(messages: number, batch = 1000): Promise<number> {
  const sys = system();
  let pids: number[] = [];
  try {
    const { actor, pids: started } = await forked(sys, 1);
    pids = started;
    const start = performance.now();
    const done = actor.sendAndReceive('expect', messages);
    for (let i = 0; i < messages;) {
      const end = Math.min(messages, i + batch);
      let last: Promise<void> | undefined;
      for (; i < end; i++) last = actor.send('tick');
      await last; // comedy's send resolves once written: the batch's backpressure
      await turn();
    }
    await done;
    return messages / ((performance.now() - start) / 1000);
  } finally {
    await sys.destroy().catch(() => undefined);
    killLeftovers(pids);
  }
}

/** createChild (forked) to the first call's answer, in ms, per sample; one actor system. */
export async function comedyColdStarts(samples: number): Promise<number[]> {
  const sys = system();
  const pids: number[] = [];
  try {
    const root = await sys.rootActor();
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      const start = performance.now();
      const actor = await root.createChild(PeerActor, { mode: 'forked' });
      await actor.sendAndReceive('add', 1, 2);
      times.push(performance.now() - start);
      pids.push((await actor.sendAndReceive('pid')) as number);
      await actor.destroy();
    }
    return times;
  } finally {
    await sys.destroy().catch(() => undefined);
    killLeftovers(pids);
  }
}

/** RSS of a forked comedy actor's process that answered one call and sat idle. */
export const comedyIdleRss = (): Promise<number> => idleRss(() => comedyCalls(1));
