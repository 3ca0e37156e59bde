/**
 * Running functions on a runner: a closure (shipped as source), a moduleRef (imported by the
 * runner), remote errors keeping their class and code, and a deadline the remote function
 * honours through callSignal().
 *
 *   npm run build && node dist/examples/call-closure-and-module.js
 */
import { CallTimeoutError, ClosureError, Pool, RemoteError, ProcessBackend, isFlameError, moduleRef } from '../src/index.js';
import type * as jobs from './jobs.js';

const JOBS = new URL('./jobs.js', import.meta.url);

const pool = await Pool.start({ name: 'calls', backend: new ProcessBackend({ stdio: 'ignore' }), max: 1, timeout: 10_000, shutdownTimeout: 5000 });
try {
  // 1. A closure: it may use its parameters, globals and `await import()`, nothing captured.
  const closure = await pool.call(async (text: string) => {
    const { createHash } = await import('node:crypto');
    return { pid: process.pid, sha: createHash('sha256').update(text).digest('hex').slice(0, 16) };
  }, ['hello']);
  console.log(`closure ran on runner pid ${closure.pid} (this is pid ${process.pid}): sha256("hello") = ${closure.sha}...`);

  // A closure that captures a variable is refused here, before anything is sent.
  const secret = 42;
  try {
    await pool.call(() => secret + 1);
  } catch (error) {
    if (error instanceof ClosureError) console.log(`captured variable refused: ${error.code}: ${error.message.split(';')[0]}`);
  }

  // 2. A moduleRef: typed by the module's own export, imported by the runner itself.
  const thumb = await pool.call(moduleRef<typeof jobs.render>(JOBS, 'render'), [{ name: 'cat.png', rounds: 1000 }]);
  console.log(`moduleRef render -> ${thumb.name} digest ${thumb.digest} (pid ${thumb.pid})`);

  // 3. Remote errors are values with their class name and code; built-in classes stay themselves.
  try {
    await pool.call(moduleRef<typeof jobs.chargeInvoice>(JOBS, 'chargeInvoice'), ['INV-7']);
  } catch (error) {
    const e = error as Error & { code?: string; invoice?: string };
    console.log(`remote error: ${e instanceof RemoteError ? 'RemoteError' : 'Error'} named ${e.name}, code ${e.code}, invoice ${e.invoice}: "${e.message}"`);
  }
  try {
    await pool.call(moduleRef<typeof jobs.parseAmount>(JOBS, 'parseAmount'), ['twelve']);
  } catch (error) {
    console.log(`remote RangeError is a RangeError here: ${error instanceof RangeError} (${(error as Error).message})`);
  }

  // 4. One deadline per call: past it the call fails with CallTimeoutError and the runner's
  //    callSignal() aborts, so the remote function stops at its next check.
  const started = performance.now();
  try {
    await pool.call(moduleRef<typeof jobs.longReport>(JOBS, 'longReport'), [50], { timeout: 450 });
  } catch (error) {
    const ms = Math.round(performance.now() - started);
    if (!(error instanceof CallTimeoutError) || !isFlameError(error, 'FLAME_ERR_CALL_TIMEOUT')) throw error;
    console.log(`deadline: ${error.name} (${error.code}) after ${ms} ms`);
  }
  const stopped = await pool.call(moduleRef<typeof jobs.lastCancellation>(JOBS, 'lastCancellation'), []);
  console.log(`the runner stopped longReport cooperatively after ${stopped?.steps} of 50 steps (signal reason: ${stopped?.reason})`);
} finally {
  await pool.stop();
  console.log('pool stopped');
}
