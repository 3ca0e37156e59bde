/**
 * Placing a long-lived actor on a runner: pool.placeChild(factory, args) returns a nact ref that
 * nact's own dispatch, query and stop drive across the wire. The actor holds one slot of its
 * runner (keeping it alive) until it stops.
 *
 *   npm run build && node dist/examples/remote-actors.js
 */
import { dispatch, query, stop, type Ref } from 'nact';
import { Pool, ProcessBackend, moduleRef } from '../src/index.js';
import type { CounterMsg, CounterReply } from './actors.js';

const ACTORS = new URL('./actors.js', import.meta.url);
const load = (pool: Pool) => pool.status().runners.map((r) => `${r.id} ${r.state} load ${r.load}`).join(', ') || 'no runners';

const pool = await Pool.start({ name: 'actors', backend: new ProcessBackend({ stdio: 'ignore' }), max: 2, idleShutdownAfter: 1000, shutdownTimeout: 5000 });
try {
  const counter = await pool.placeChild<CounterMsg>(moduleRef(ACTORS, 'counter'), [10], { timeout: 10_000 });
  console.log(`placed a counter starting at 10: ${String(counter)}`);
  console.log(`pool while it lives: ${load(pool)}`);

  dispatch(counter, { type: 'inc' });
  dispatch(counter, { type: 'inc', by: 5 });
  const reply = await query(counter, (sender: Ref<CounterReply>) => ({ type: 'get', sender }), 2000);
  console.log(`after inc and inc by 5: count ${reply.count}, answered by pid ${reply.pid} on ${reply.host} (this is pid ${process.pid})`);

  // The runner is idle-shutdown eligible after 1 s, but the placed actor keeps it up.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const later = await query(counter, (sender: Ref<CounterReply>) => ({ type: 'get', sender }), 2000);
  console.log(`1.5 s later (past idleShutdownAfter) the actor still answers: count ${later.count}; ${load(pool)}`);

  stop(counter);
  const deadline = performance.now() + 5000;
  while (pool.status().runners.some((r) => r.load > 0) && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  console.log(`stopped it with nact's stop: its slot is free again: ${load(pool)}`);
  try {
    await query(counter, (sender: Ref<CounterReply>) => ({ type: 'get', sender }), 1000);
  } catch (error) {
    console.log(`querying the stopped actor fails: ${(error as Error).message}`);
  }
} finally {
  await pool.stop();
  console.log('pool stopped');
}
