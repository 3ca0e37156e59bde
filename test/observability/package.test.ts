/**
 * The published package, as a user gets it: `npm pack`, installed from the tarball into a fresh
 * project in a temporary folder, then its `flame-actors` command and its exports used from there.
 * The install prefers npm's cache (the registry is asked only for what the cache lacks).
 */
import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kubectl, kubectlUntil } from '../kube/helpers.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], cwd: string, timeout: number, env: NodeJS.ProcessEnv = process.env): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, timeout, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, env }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** True while some process of the process group `pgid` exists. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('Published package (npm pack, installed in a fresh project)', function () {
  this.timeout(180_000);
  let dir: string;
  let app: string;
  let emulator: ChildProcess | undefined;

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'flame-package-spec-'));
    app = join(dir, 'app');
    const packed = await run('npm', ['pack', '--pack-destination', dir, '--ignore-scripts', '--silent'], ROOT, 60_000);
    expect(packed.code, packed.stderr).to.equal(0);
    const tarball = join(dir, packed.stdout.trim().split('\n').pop()!);
    await run('mkdir', [app], dir, 5000);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
    // No install scripts: msgpackr falls back to JavaScript without its native extension.
    const installed = await run('npm', ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', tarball], app, 170_000);
    expect(installed.code, installed.stderr).to.equal(0);
  });

  afterEach(async () => {
    if (emulator?.pid !== undefined && groupAlive(emulator.pid)) {
      process.kill(-emulator.pid, 'SIGKILL');
      await waitFor(() => !groupAlive(emulator!.pid!), 'the emulator\'s group to be killed', 10_000, 20);
    }
    emulator = undefined;
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('npx flame-actors bench --backend process --duration 3 --json prints the rows (and --html writes a self-contained report)', async () => {
    const report = join(dir, 'report.html');
    const bench = await run('npx', ['flame-actors', 'bench', '--backend', 'process', '--duration', '3', '--json', '--html', report], app, 90_000);
    expect(bench.code, bench.stderr).to.equal(0);
    const rows = JSON.parse(bench.stdout) as { name: string; value: number; unit: string }[];
    const names = rows.map((r) => r.name);
    for (const name of ['placed-dispatch-1', 'placed-dispatch-n', 'local-nact-dispatch', 'placed-query-p50', 'placed-query-p99', 'link-ws-pingpong-p50',
      'call-throughput', 'call-throughput-traced', 'cold-call', 'process-spawn-connect']) {
      expect(names, bench.stdout).to.include(name);
    }
    for (const row of rows) expect(row.value, row.name).to.be.above(0);
    const html = readFileSync(report, 'utf8');
    expect(html.match(/<svg /g), 'charts').to.have.length(2);
    expect(html).to.include('<td>call-throughput-traced</td>');
    // Nothing fetched: no script, stylesheet or image from elsewhere.
    expect(html).not.to.match(/<script|<link|src=|href=/);
  });

  it('npx flame-actors emulator starts a cluster that kubectl lists pods of, and stops on SIGTERM', async () => {
    const kubeconfig = join(dir, 'kubeconfig');
    // Its own process group (npx and the emulator), so the test can signal both.
    const child = spawn('npx', ['flame-actors', 'emulator', '--kubeconfig', kubeconfig], {
      cwd: app, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: dir },
    });
    emulator = child;
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(() => out.includes('Press Ctrl-C') || child.exitCode !== null, 'the emulator to start', 30_000, 20);
    expect(out).to.include(`Kubeconfig (admin): ${kubeconfig}`);
    const created = await kubectl(kubeconfig, ['run', 'hello', '--image=node:20', '--restart=Never', '--', '-e', 'setInterval(() => {}, 1000)']);
    expect(created.stdout.trim(), created.stderr).to.equal('pod/hello created');
    await kubectlUntil(kubeconfig, ['get', 'pods', '-A'], (listed) => /default\s+hello\s+1\/1\s+Running/.test(listed), 'the pod to be listed Running');
    // npx and the emulator both get SIGTERM: npx ends at once, the emulator once its pods are gone.
    process.kill(-child.pid!, 'SIGTERM');
    await waitFor(() => !groupAlive(child.pid!), 'every process of the emulator\'s group to exit', 20_000, 50);
    expect(out).to.include('SIGTERM: stopping the emulated cluster');
    expect(out).not.to.include('error while stopping');
    const after = await kubectl(kubeconfig, ['get', 'pods', '-A', '--request-timeout=2s']);
    expect(after.code, 'kubectl after the emulator stopped').not.to.equal(0);
  });

  it('a script subscribing to flame-actors:call sees start/end for a call and error for a failing one; enableMetrics names its missing peer', async () => {
    writeFileSync(join(app, 'trace.js'), `
import dc from 'node:diagnostics_channel';
import { Pool, enableMetrics } from 'flame-actors';
const seen = [];
const on = (event) => (m) => seen.push([event, m.function, m.code ?? null]);
dc.tracingChannel('flame-actors:call').subscribe({ start: on('start'), end: on('end'), asyncStart: on('asyncStart'), asyncEnd: on('asyncEnd'), error: on('error') });
const pool = await Pool.start({ name: 'traced', max: 1 });
try {
  await pool.call(function double(n) { return n * 2; }, [21]);
  await pool.call(function fails() { throw Object.assign(new Error('nope'), { code: 'E_NOPE' }); }).catch(() => {});
} finally {
  await pool.stop();
}
const metrics = await enableMetrics().then(() => 'enabled', (e) => e.code);
console.log(JSON.stringify({ seen, metrics }));
`);
    const traced = await run(process.execPath, ['trace.js'], app, 30_000);
    expect(traced.code, traced.stderr).to.equal(0);
    const { seen, metrics } = JSON.parse(traced.stdout.trim().split('\n').pop()!) as { seen: [string, string, string | null][]; metrics: string };
    expect(seen).to.deep.equal([
      ['start', 'double', null], ['end', 'double', null], ['asyncStart', 'double', null], ['asyncEnd', 'double', null],
      ['start', 'fails', null], ['end', 'fails', null], ['error', 'fails', 'E_NOPE'], ['asyncStart', 'fails', 'E_NOPE'], ['asyncEnd', 'fails', 'E_NOPE'],
    ]);
    expect(metrics).to.equal('FLAME_ERR_MISSING_DEPENDENCY');
  });
});
