import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { serveStatus, type StatusReport, type StatusServer } from '../../src/observability/status.js';
import { startPool } from '../helpers/pools.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: unknown }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('Status endpoint (serveStatus) and flame-actors status', function () {
  this.timeout(60_000);
  let server: StatusServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('answers GET /status with each pool\'s runners, loads and queue, and the command prints them', async () => {
    const pool = await startPool({ name: 'watched', min: 1, max: 3, maxConcurrency: 7 });
    server = await serveStatus({ port: 0 });
    const report = (await (await fetch(server.url)).json()) as StatusReport;
    const mine = report.pools.find((p) => p.pool === 'watched');
    const runner = pool.status().runners[0]!;
    expect(mine).to.deep.include({ pool: 'watched', state: 'running', queued: 0, min: 1, max: 3, maxConcurrency: 7 });
    expect(mine!.runners).to.deep.equal([{ ...runner }]);
    const printed = await cli(['status', server.url]);
    expect(printed.code, printed.stderr).to.equal(0);
    expect(printed.stdout).to.match(/pool watched \(running\) on flame-parent@/);
    expect(printed.stdout).to.match(/runners 1 of max 3 \(min 1\): ready 1; load 0\/7; queued 0/);
    expect(printed.stdout).to.include(runner.id);
    const json = await cli(['status', server.url, '--json']);
    expect((JSON.parse(json.stdout) as StatusReport).pools.map((p) => p.pool)).to.include('watched');
    await pool.stop();
    const after = (await (await fetch(server.url)).json()) as StatusReport;
    expect(after.pools.map((p) => p.pool)).not.to.include('watched');
  });

  it('answers 404 to any other path or method', async () => {
    server = await serveStatus({ port: 0 });
    expect((await fetch(server.url.replace('/status', '/other'))).status).to.equal(404);
    expect((await fetch(server.url, { method: 'POST', body: 'x' })).status).to.equal(404);
  });

  it('refuses an unknown option naming it, and the command names an endpoint that is not one', async () => {
    const error = await serveStatus({ prot: 1 } as never).then(() => undefined, (e: unknown) => e);
    expect(error).to.have.property('code', 'FLAME_ERR_INVALID_OPTION');
    expect((error as Error).message).to.include('prot');
    server = await serveStatus({ port: 0 });
    const wrong = await cli(['status', server.url.replace('/status', '/nope')]);
    expect(wrong.code).to.equal(2);
    expect(wrong.stderr).to.include('answered 404');
  });
});
