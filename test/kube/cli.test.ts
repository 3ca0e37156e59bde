import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, isAlive, kubectl, kubectlUntil, POD_MARKER } from './helpers.js';

const CLI = fileURLToPath(new URL('../../src/testing/kube/cli.js', import.meta.url));
const PID_IMAGE = `spec/pid:1=node -e console.log(process.pid);setInterval(()=>{},1000) ${POD_MARKER}`;

interface RunningCli {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** The emulator keeps its temporary folder under TMPDIR: the test's own folder, removed afterwards. */
function startCli(args: string[], tmp: string): RunningCli {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: tmp } });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function startPidPod(kubeconfig: string): Promise<number> {
  const created = await kubectl(kubeconfig, ['run', 'pid', '--image=spec/pid:1', '--restart=Never']);
  expect(created.stdout.trim(), created.stderr).to.equal('pod/pid created');
  const printed = await kubectlUntil(kubeconfig, ['logs', 'pid'], (out) => Number(out.trim()) > 0, 'the pod to print its pid');
  const pid = Number(printed.trim());
  return pid;
}

describe('Emulator command (npm run emulator)', function () {
  this.timeout(40_000);
  let dir: string;
  let running: RunningCli | undefined;

  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), 'emulator-cli-spec-'));
  });

  afterEach(async function () {
    if (running && running.child.exitCode === null && running.child.signalCode === null) {
      running.child.kill('SIGKILL');
      await running.exited;
    }
    running = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes a kubeconfig kubectl uses as it is, and stops on SIGTERM killing its pods', async function () {
    const kubeconfig = join(dir, 'kubeconfig');
    running = startCli(['--kubeconfig', kubeconfig, '--image', PID_IMAGE], dir);
    const cli = running;
    await eventually(() => cli.output().includes('Press Ctrl-C'), 'the emulator to start', 15_000);
    expect(cli.output()).to.match(/listening at https:\/\/127\.0\.0\.1:\d+/);
    expect(cli.output()).to.include(`Kubeconfig (admin): ${kubeconfig}`);
    expect(cli.output()).to.include(`kubectl --kubeconfig ${kubeconfig} apply -k deploy/kubernetes`);
    expect((await kubectl(kubeconfig, ['api-resources', '--api-group=apps', '-o', 'name'])).stdout.trim().split('\n')).to.deep.equal(['deployments.apps', 'replicasets.apps']);
    const pid = await startPidPod(kubeconfig);
    expect(isAlive(pid)).to.equal(true);
    cli.child.kill('SIGTERM');
    expect(await cli.exited).to.equal(0);
    expect(isAlive(pid)).to.equal(false);
  });

  it('leaves no pod process behind even when it is killed outright', async function () {
    if (spawnSync('setpriv', ['--pdeathsig', 'KILL', 'true']).status !== 0) this.skip();
    const kubeconfig = join(dir, 'kubeconfig');
    running = startCli(['--kubeconfig', kubeconfig, '--image', PID_IMAGE], dir);
    const cli = running;
    await eventually(() => cli.output().includes('Press Ctrl-C'), 'the emulator to start', 15_000);
    const pid = await startPidPod(kubeconfig);
    cli.child.kill('SIGKILL');
    await cli.exited;
    await eventually(() => !isAlive(pid), 'the pod process to die with the emulator');
  });

  it('refuses bad options with a clear message and exit code 2', async function () {
    running = startCli(['--port', 'lots'], dir);
    expect(await running.exited).to.equal(2);
    expect(running.output()).to.include('--port must be a port number, got lots');
    running = startCli(['--image', 'no-equals-sign'], dir);
    expect(await running.exited).to.equal(2);
    expect(running.output()).to.include('--image expects NAME=COMMAND');
  });
});
