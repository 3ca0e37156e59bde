import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNode } from '../../src/cluster/node.js';
import { ProcessBackend } from '../../src/backends/process/backend.js';
import { defaultBackend } from '../../src/backends/default.js';
import { LocalBackend } from '../../src/backends/local/backend.js';
import { moduleRef } from '../../src/flame/fn-ref.js';
import { decodeParent, encodeParent, isRunner, parentInfo } from '../../src/flame/parent.js';
import { InvalidOptionError, ParentTokenError } from '../../src/errors.js';
import { forkChild } from '../helpers/processes.js';
import { alive, runnerPids, startPool } from '../helpers/pools.js';
import { waitFor } from '../helpers/wait.js';
import type * as Jobs from '../fixtures/pool-jobs.js';

const JOBS = new URL('../fixtures/pool-jobs.js', import.meta.url);
const slow = moduleRef<typeof Jobs.slow>(JOBS, 'slow');
const RUNNER_MAIN = fileURLToPath(new URL('../../src/runner/main.js', import.meta.url));

describe('Runner lifecycle', function () {
  it('leaves no runner behind when the parent is killed with SIGKILL (failsafe)', async function () {
    const parent = forkChild(new URL('../fixtures/parent-process.js', import.meta.url), { MIN: '2', FAILSAFE_MS: '1500', STDIO: 'ignore' }, 20_000);
    const { pids } = (await parent.ready) as { pids: number[] };
    expect(pids).to.have.length(2);
    expect(pids.every(alive)).to.equal(true);
    const killedAt = performance.now();
    await parent.kill('SIGKILL');
    await waitFor(() => pids.every((p) => !alive(p)), 'every runner of the killed parent to exit', 5000);
    expect(performance.now() - killedAt).to.be.below(1500 + 2000);
  });

  it('lets a busy runner finish its call when its parent is SIGKILLed, with the default stdio (stderr piped to the dead parent)', async function () {
    const dir = mkdtempSync(join(tmpdir(), 'flame-orphan-'));
    try {
      const marker = join(dir, 'done');
      const parent = forkChild(new URL('../fixtures/parent-process.js', import.meta.url), { MIN: '1', FAILSAFE_MS: '8000', BUSY_MARKER: marker, BUSY_MS: '700' }, 20_000);
      const { pids } = (await parent.ready) as { pids: number[] };
      await parent.kill('SIGKILL');
      await waitFor(() => existsSync(marker), 'the busy call to finish after its parent died', 8000);
      await waitFor(() => pids.every((p) => !alive(p)), 'the runner to exit after draining', 8000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('drains an in-flight call on SIGTERM before exiting (shutdownTimeout)', async function () {
    const pool = await startPool({ name: 'sigterm', backend: new ProcessBackend({ stdio: 'ignore' }), max: 1, shutdownTimeout: 5000 });
    const [first] = await Promise.all([pool.call(() => process.pid)]);
    const call = pool.call(slow, [600]);
    await waitFor(() => pool.status().runners[0]?.load === 1, 'the call to start');
    process.kill(first!, 'SIGTERM');
    expect(await call).to.equal(first);
    await waitFor(() => !alive(first!), 'the drained runner to exit');
  });

  it('finishes in-flight work when its parent is lost, then exits (drain bounded by the failsafe)', async function () {
    const dir = mkdtempSync(join(tmpdir(), 'flame-drain-'));
    const node = await startNode({ name: 'drained@127.0.0.37', port: 0, cookie: 'drain', log: false });
    try {
      const pool = await startPool({ name: 'parent-loss', node, backend: new ProcessBackend({ stdio: 'ignore' }), max: 1, shutdownTimeout: 5000, failsafeTimeout: 5000 });
      const [runnerPid] = await Promise.all([pool.call(() => process.pid)]);
      const marker = join(dir, 'done');
      void pool.call(moduleRef<typeof Jobs.slowMarker>(JOBS, 'slowMarker'), [700, marker]).catch(() => {});
      await waitFor(() => pool.status().runners[0]?.load === 1, 'the call to start');
      await node.stop();
      await waitFor(() => existsSync(marker), 'the in-flight call to finish after the parent was lost');
      await waitFor(() => !alive(runnerPid!), 'the runner to exit after draining', 7000);
    } finally {
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start without FLAME_PARENT, with a clear message', async function () {
    const child = spawn(process.execPath, [RUNNER_MAIN], { env: { ...process.env, FLAME_PARENT: '' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = await once(child, 'exit');
    expect(code).to.equal(1);
    expect(stderr).to.match(/FLAME_PARENT is not set: a runner is started by a pool/);
  });

  it('gives up joining a parent that is gone within a second or two, not the failsafe', async function () {
    const token = encodeParent({
      parent: 'flame-parent@127.0.0.33:9', runner: 'gone-1', pool: 'gone', backend: 'process',
      idleShutdownAfter: 1000, shutdownTimeout: 100, failsafeTimeout: 20_000, bootTimeout: 30_000, singleUse: false, log: false,
    });
    const started = performance.now();
    const child = spawn(process.execPath, [RUNNER_MAIN], { env: { ...process.env, FLAME_PARENT: token, FLAME_COOKIE: 'c', POD_IP: '127.0.0.34', FLAME_PORT: '0' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = await once(child, 'exit');
    expect(code).to.equal(1);
    expect(stderr).to.match(/cannot join parent flame-parent@127\.0\.0\.33:9: .*ECONNREFUSED/);
    expect(performance.now() - started).to.be.below(5000);
  });

  it('refuses a malformed or incompatible FLAME_PARENT token', async function () {
    expect(() => decodeParent('%%%')).to.throw(ParentTokenError, /not a valid token/);
    const wrongVersion = Buffer.from(JSON.stringify({ v: 99 })).toString('base64url');
    expect(() => decodeParent(wrongVersion)).to.throw(ParentTokenError, /version 99, this runner understands version 1/);
    const child = spawn(process.execPath, [RUNNER_MAIN], { env: { ...process.env, FLAME_PARENT: wrongVersion, FLAME_COOKIE: 'x' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = await once(child, 'exit');
    expect(code).to.equal(1);
    expect(stderr).to.match(/same flame-actors release/);
  });

  it('tells an app whether it runs as a runner, and who its parent is', function () {
    const token = encodeParent({
      parent: 'flame-parent@10.0.0.1', runner: 'p-1', pool: 'p', backend: 'process',
      idleShutdownAfter: Infinity, shutdownTimeout: 1, failsafeTimeout: 2, bootTimeout: 3, singleUse: false, log: false,
    });
    expect(isRunner({})).to.equal(false);
    expect(parentInfo({})).to.equal(undefined);
    expect(isRunner({ FLAME_PARENT: token })).to.equal(true);
    expect(parentInfo({ FLAME_PARENT: token })).to.include({ parent: 'flame-parent@10.0.0.1', runner: 'p-1', pool: 'p', idleShutdownAfter: Infinity });
  });

  it('picks the backend from FLAME_BACKEND', async function () {
    expect(await defaultBackend({})).to.be.instanceOf(ProcessBackend);
    expect(await defaultBackend({ FLAME_BACKEND: 'local' })).to.be.instanceOf(LocalBackend);
    const error = await defaultBackend({ FLAME_BACKEND: 'docker' }).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(InvalidOptionError);
    expect((error as Error).message).to.match(/FLAME_BACKEND must be one of process, local, kubernetes \(got "docker"\)/);
  });

  it('keeps working when a user hook throws', async function () {
    const pool = await startPool({
      name: 'hooks', backend: new ProcessBackend({ stdio: 'ignore' }), max: 1, shutdownTimeout: 500,
      onGrowStart: () => { throw new Error('hook bug'); },
      onGrowEnd: () => { throw new Error('hook bug'); },
      onShrink: () => { throw new Error('hook bug'); },
    });
    expect(await pool.call((x: number) => x + 1, [1])).to.equal(2);
    const [pid] = runnerPids(pool);
    process.kill(pid!, 'SIGKILL');
    await waitFor(() => pool.status().runners.length === 0, 'the pool to forget the dead runner');
    expect(await pool.call((x: number) => x + 1, [2])).to.equal(3);
  });
});
