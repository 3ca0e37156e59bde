import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../helpers/wait.js';

const APP = fileURLToPath(new URL('../../examples/k8s-square-service.js', import.meta.url));

describe('The deploy kit\'s example app, outside Kubernetes', function () {
  this.timeout(40_000);
  let app: ChildProcess | undefined;

  afterEach(function () {
    if (app && app.exitCode === null && app.signalCode === null) app.kill('SIGKILL');
    app = undefined;
  });

  it('answers /square from a runner process of itself and /healthz, refuses a bad x, and stops its pool on SIGTERM', async function () {
    const host = '127.0.0.9';
    app = spawn(process.execPath, [APP], { env: { ...process.env, POD_IP: host, PORT: '18089', FLAME_BACKEND: 'process' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    app.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    app.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const base = `http://${host}:18089`;
    await waitFor(() => out.includes('square service on'), 'the app to listen', 20_000, 20);
    expect(await (await fetch(`${base}/healthz`)).json()).to.deep.equal({ ok: true });
    const answer = await (await fetch(`${base}/square?x=12`)).json() as { result: number; runner: string };
    expect(answer.result).to.equal(144);
    expect(answer.runner).to.match(/^square-1@127\.2\.\d+\.\d+$/);
    expect((await fetch(`${base}/square?x=twelve`)).status).to.equal(400);
    const exited = once(app, 'exit');
    app.kill('SIGTERM');
    const [code] = await exited as [number | null];
    expect(code, out).to.equal(0);
    expect(out).to.match(/stopped on SIGTERM in \d+ ms\n/);
  });
});
