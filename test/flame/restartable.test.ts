import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dispatch, query, stop, type Ref } from 'nact';
import { ProcessBackend } from '../../src/backends/process/backend.js';
import { moduleRef } from '../../src/flame/fn-ref.js';
import type { PoolOptions } from '../../src/flame/options.js';
import type { RestartInfo } from '../../src/flame/restartable.js';
import type { RunnerStatus } from '../../src/flame/runner-handle.js';
import { ActorUnavailableError, InvalidOptionError } from '../../src/errors.js';
import { alive, runnerPids, startPool } from '../helpers/pools.js';
import { nextEvent, waitFor } from '../helpers/wait.js';
import type { CounterMsg, CounterReply } from '../../examples/persistent-actors.js';
import type * as Actors from '../../examples/persistent-actors.js';

const ACTORS = new URL('../../examples/persistent-actors.js', import.meta.url);
const plainCounter = moduleRef<typeof Actors.plainCounter>(ACTORS, 'plainCounter');
const persistentCounter = moduleRef<typeof Actors.persistentCounter>(ACTORS, 'persistentCounter');

function options(extra: Partial<PoolOptions> & { max: number }): PoolOptions {
  return { backend: new ProcessBackend({ stdio: 'ignore' }), shutdownTimeout: 1000, failsafeTimeout: 3000, ...extra };
}

const get = (ref: Ref<CounterMsg>) => query(ref, (sender: Ref<CounterReply>) => ({ type: 'get', sender }), 10_000);

/** Resolves with the next restart reported to `onRestart`. */
function restarts(): { onRestart(info: RestartInfo): void; next(): Promise<RestartInfo> } {
  const waiting: ((info: RestartInfo) => void)[] = [];
  const seen: RestartInfo[] = [];
  return {
    onRestart: (info) => {
      const resolve = waiting.shift();
      if (resolve) resolve(info);
      else seen.push(info);
    },
    next: () => (seen.length > 0 ? Promise.resolve(seen.shift()!) : new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no restart within 30 s')), 30_000);
      waiting.push((info) => {
        clearTimeout(timer);
        resolve(info);
      });
    })),
  };
}

let dir: string;
beforeEach(function () {
  dir = mkdtempSync(join(tmpdir(), 'flame-restart-'));
});
afterEach(function () {
  rmSync(dir, { recursive: true, force: true });
});

describe('placeChild with restart', function () {
  it('answers query on the same ref after its runner is SIGKILLed, with messages sent while it moved delivered', async function () {
    const pool = await startPool(options({ name: 'restart-plain', max: 1 }));
    const r = restarts();
    const counter: Ref<CounterMsg> = await pool.placeChild(plainCounter, [5], { restart: { onRestart: r.onRestart } });
    dispatch(counter, { type: 'inc' });
    const before = await get(counter);
    expect(before.count).to.equal(6);
    const [victim] = runnerPids(pool);
    expect(before.pid).to.equal(victim);

    const down = nextEvent<[RunnerStatus, string]>(pool, 'runnerDown', 20_000);
    process.kill(victim!, 'SIGKILL');
    await down;
    // Moving now (the pool has no runner until a new one boots): these wait in the queue, in order.
    dispatch(counter, { type: 'inc' });
    const askedWhileMoving = get(counter);
    const info = await r.next();
    expect(info.restarts).to.equal(1);
    expect((await askedWhileMoving).count).to.equal(6);
    const after = await get(counter);
    expect(after.pid).to.not.equal(victim);
    expect(alive(after.pid)).to.equal(true);
    // A fresh actor from the same factory and arguments (5), plus the queued increment.
    expect(after.count).to.equal(6);
  });

  it('recovers a persistent actor\'s state on its new runner (nact spawnPersistent with a file journal)', async function () {
    const pool = await startPool(options({ name: 'restart-persistent', max: 1 }));
    const r = restarts();
    const counter: Ref<CounterMsg> = await pool.placeChild(persistentCounter, [join(dir, 'journal'), 'visits'], { restart: { onRestart: r.onRestart } });
    for (let i = 0; i < 3; i++) dispatch(counter, { type: 'inc' });
    const before = await get(counter);
    expect(before.count).to.equal(3);
    process.kill(before.pid, 'SIGKILL');
    await r.next();
    dispatch(counter, { type: 'inc' });
    const after = await get(counter);
    expect(after.pid).to.not.equal(before.pid);
    expect(after.count).to.equal(4);
  });

  it('gives up past maxRestarts within withinMs (ActorUnavailableError to onGiveUp), and drops messages beyond maxQueued while moving', async function () {
    const pool = await startPool(options({ name: 'restart-limit', max: 1 }));
    const r = restarts();
    const dropped: [unknown, ActorUnavailableError][] = [];
    let gaveUp: ActorUnavailableError | undefined;
    const counter: Ref<CounterMsg> = await pool.placeChild(plainCounter, [0], {
      restart: { maxRestarts: 1, withinMs: 60_000, maxQueued: 1, onRestart: r.onRestart, onDropped: (m, e) => dropped.push([m, e]), onGiveUp: (e) => (gaveUp = e) },
    });
    let down = nextEvent<[RunnerStatus, string]>(pool, 'runnerDown', 20_000);
    process.kill(runnerPids(pool)[0]!, 'SIGKILL');
    await down;
    dispatch(counter, { type: 'inc' });
    dispatch(counter, { type: 'inc' });
    await waitFor(() => dropped.length > 0, 'the second message to be dropped');
    expect(dropped.map(([, e]) => e.reason)).to.deep.equal(['queue full']);
    await r.next();
    expect((await get(counter)).count).to.equal(1);

    down = nextEvent<[RunnerStatus, string]>(pool, 'runnerDown', 20_000);
    process.kill(runnerPids(pool)[0]!, 'SIGKILL');
    await down;
    await waitFor(() => gaveUp !== undefined, 'the actor to give up');
    expect(gaveUp).to.be.instanceOf(ActorUnavailableError).and.include({ reason: 'gave up', restarts: 1 });
    expect(gaveUp!.code).to.equal('FLAME_ERR_ACTOR_UNAVAILABLE');
  });

  it('stops the placed actor (and frees its slot) when the caller stops the ref', async function () {
    const pool = await startPool(options({ name: 'restart-stop', max: 1 }));
    const counter: Ref<CounterMsg> = await pool.placeChild(plainCounter, [0], { restart: {} });
    expect(pool.status().runners[0]!.load).to.equal(1);
    stop(counter);
    await waitFor(() => pool.status().runners[0]?.load === 0, 'the placed actor\'s slot to be free');
  });

  it('refuses bad restart options', async function () {
    const pool = await startPool(options({ name: 'restart-options', max: 1 }));
    const error = await pool.placeChild(plainCounter, [0], { restart: { maxRestart: 2 } as never }).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(InvalidOptionError).and.include({ suggestion: 'maxRestarts' });
  });
});
