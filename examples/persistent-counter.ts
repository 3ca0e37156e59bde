/**
 * An actor that survives its runner: a persistent counter (nact's spawnPersistent, with the
 * file-backed journal of examples/persistent-actors.ts) placed with `restart`. Its runner is
 * SIGKILLed; the pool places it again on a new runner, which replays the journal, and the ref
 * this program holds keeps working: the count is still there.
 *
 *   npm run build && node dist/examples/persistent-counter.js
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dispatch, query, type Ref } from 'nact';
import { Pool, ProcessBackend, moduleRef, type RestartInfo } from '../src/index.js';
import type * as actors from './persistent-actors.js';
import type { CounterMsg, CounterReply } from './persistent-actors.js';

const ACTORS = new URL('./persistent-actors.js', import.meta.url);
const journal = mkdtempSync(join(tmpdir(), 'flame-journal-'));
const get = (ref: Ref<CounterMsg>) => query(ref, (sender: Ref<CounterReply>) => ({ type: 'get', sender }), 10_000);

const pool = await Pool.start({ name: 'counters', backend: new ProcessBackend({ stdio: 'ignore' }), max: 1, shutdownTimeout: 2000 });
try {
  let restarted: (info: RestartInfo) => void = () => {};
  const restart = new Promise<RestartInfo>((resolve) => (restarted = resolve));
  const counter: Ref<CounterMsg> = await pool.placeChild(moduleRef<typeof actors.persistentCounter>(ACTORS, 'persistentCounter'), [journal, 'visits'], {
    restart: { maxRestarts: 3, withinMs: 60_000, onRestart: (info) => restarted(info) },
  });
  for (let i = 0; i < 5; i++) dispatch(counter, { type: 'inc' });
  const before = await get(counter);
  console.log(`count ${before.count} on runner pid ${before.pid}`);

  process.kill(before.pid, 'SIGKILL');
  console.log(`SIGKILLed runner pid ${before.pid}`);
  const info = await restart;
  console.log(`placed again on ${info.node} (restart ${info.restarts} of at most 3 within 60 s)`);

  const after = await get(counter);
  console.log(`same ref, new runner pid ${after.pid}: count ${after.count} (recovered from the journal)`);
  dispatch(counter, { type: 'inc' });
  console.log(`one more: count ${(await get(counter)).count}`);
} finally {
  await pool.stop();
  rmSync(journal, { recursive: true, force: true });
  console.log('pool stopped');
}
