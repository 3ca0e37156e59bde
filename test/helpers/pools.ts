/** Pools started by tests, stopped after each test even when it fails; runner process checks. */
import { Pool } from '../../src/flame/pool.js';
import { setDefaultBackendFactory } from '../../src/flame/backend.js';
import { defaultBackend } from '../../src/backends/default.js';
import type { PoolOptions } from '../../src/flame/options.js';
import type { Backend, BackendContext, RunnerInstance, RunnerSpec } from '../../src/flame/backend.js';

setDefaultBackendFactory(() => defaultBackend());

const pools = new Set<Pool>();

export async function startPool(options: PoolOptions): Promise<Pool> {
  const pool = await Pool.start(options);
  pools.add(pool);
  return pool;
}

export async function stopAllPools(): Promise<void> {
  const all = [...pools];
  pools.clear();
  await Promise.all(all.map((p) => p.stop()));
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids of the pool's process runners, read from their descriptions (`pid N on 127.2.x.y`). */
export function runnerPids(pool: Pool): number[] {
  return pool.status().runners.map((r) => Number(/pid (\d+)/.exec(r.description ?? '')?.[1])).filter((n) => n > 0);
}

/** Delegates to a real backend, except the boots `fails(n)` picks (n counts from 1), which it refuses. */
export class ScriptedBoots implements Backend {
  readonly name = 'process';
  boots = 0;
  constructor(readonly inner: Backend, readonly fails: (n: number) => boolean) {}
  init(context: BackendContext): Promise<void> {
    return this.inner.init(context);
  }
  boot(spec: RunnerSpec, signal: AbortSignal): Promise<RunnerInstance> {
    if (this.fails(++this.boots)) return Promise.reject(new Error('no capacity left'));
    return this.inner.boot(spec, signal);
  }
  shutdown(runner: RunnerInstance): Promise<void> {
    return this.inner.shutdown(runner);
  }
  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}
