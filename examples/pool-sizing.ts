/**
 * Pool sizing: `min` runners kept warm, growth towards `max` while callers wait for one of the
 * `maxConcurrency` slots, queued callers, and idle runners above `min` stopping after
 * `idleShutdownAfter`. The grow/shrink hooks print as it happens.
 *
 *   npm run build && node dist/examples/pool-sizing.js
 */
import { Pool, ProcessBackend } from '../src/index.js';

const t0 = performance.now();
const at = () => `${((performance.now() - t0) / 1000).toFixed(2)}s`.padStart(6);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const pool = await Pool.start({
  name: 'sizing',
  backend: new ProcessBackend({ stdio: 'ignore' }),
  min: 1,
  max: 3,
  maxConcurrency: 2,
  idleShutdownAfter: 1000,
  shutdownTimeout: 5000,
  onGrowStart: (info) => console.log(`${at()} onGrowStart  ${info.runner} (runners: ${info.count})`),
  onGrowEnd: (error, info) => console.log(`${at()} onGrowEnd    ${info.runner} ${error ? `failed: ${error.message}` : 'ready'}`),
  onShrink: (info) => console.log(`${at()} onShrink     ${info.runner} (${info.reason}; runners left: ${info.count})`),
});
const show = (label: string) => {
  const s = pool.status();
  const runners = s.runners.map((r) => `${r.id}:${r.state}:${r.load}/${s.maxConcurrency}`).join(' ');
  console.log(`${at()} ${label.padEnd(12)} queued ${s.queued}  [${runners}]`);
};
try {
  show('started');
  // 10 calls of 400 ms against 1 runner x 2 slots: 8 callers queue, the pool grows to max 3.
  const calls = Array.from({ length: 10 }, (_, i) =>
    pool.call((n: number) => new Promise<number>((resolve) => setTimeout(() => resolve(n), 400)), [i], { timeout: 15_000 }),
  );
  show('burst sent');
  let done = 0;
  for (const call of calls) void call.then(() => done++);
  while (done < calls.length) {
    await sleep(200);
    show(`${done}/${calls.length} done`);
  }
  await Promise.all(calls);

  // Idle: runners above min stop after idleShutdownAfter; min stays.
  const deadline = performance.now() + 8000;
  while (pool.status().runners.length > 1 && performance.now() < deadline) await sleep(100);
  show('idle');
  console.log(`${at()} back to min: ${pool.status().runners.length} runner(s)`);
} finally {
  await pool.stop();
  console.log(`${at()} pool stopped`);
}
