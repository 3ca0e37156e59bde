/**
 * `call-throughput-cold`: a fresh parent process starts a one-runner pool and times its first
 * 10,000 calls (100 in flight), with nothing warmed up on either side but what `Pool.start` does
 * itself (its warm-up, on by default); then, as `call-throughput-cold-steady`, the same pool's
 * rate over its calls 40,000 to 80,000 in this same process (the state `call-throughput-1` is
 * measured in, without the benchmark process's other work). Reports both over IPC.
 */
import { ProcessBackend } from '../../src/backends/process/backend.js';
import { Pool } from '../../src/flame/pool.js';
import { pipelined } from './drive.js';

const calls = Number(process.env.COLD_CALLS ?? 10_000);
const pool = await Pool.start({
  name: 'cold-throughput', min: 1, max: 1, maxConcurrency: 100, idleShutdownAfter: Infinity, shutdownTimeout: 1000,
  backend: new ProcessBackend({ stdio: 'ignore' }),
});
try {
  const call = (a: number, b: number) => pool.call((x: number, y: number) => x + y, [a, b]);
  const rate = await pipelined(call, calls);
  await pipelined(call, calls * 3);
  const steady = await pipelined(call, calls * 4);
  process.send!({ rate, steady });
} finally {
  await pool.stop();
}
process.disconnect();
