/**
 * Whatever happened at boot (the command does not exist, is not executable, exits at once, the
 * runner never joins), a backend's shutdown and dispose, and so `pool.stop()`, resolve within
 * their deadline.
 */
import { expect } from 'chai';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessBackend } from '../../src/backends/process/backend.js';
import { errorLine } from '../../src/backends/process/backend.js';
import { LocalBackend } from '../../src/backends/local/backend.js';
import { BootError, InvalidOptionError } from '../../src/errors.js';
import type { Backend, BackendContext } from '../../src/flame/backend.js';
import { encodeParent } from '../../src/flame/parent.js';
import { createLogger } from '../../src/log.js';
import type { ClusterNode } from '../../src/cluster/node.js';
import { startPool } from '../helpers/pools.js';
import { settlesWithin, waitFor } from '../helpers/wait.js';

const context = (exits: string[] = []): BackendContext => ({
  pool: 'boot-failures',
  node: undefined as unknown as ClusterNode,
  logger: createLogger(false),
  runnerExited: (id, reason) => void exits.push(`${id}: ${reason}`),
});

const spec = (env: Record<string, string> = {}) => ({ id: 'r-1', env, shutdownTimeout: 500 });

describe('Backends after a failed boot', function () {
  let dir: string;
  let notExecutable: string;
  before(function () {
    dir = mkdtempSync(join(tmpdir(), 'flame-boot-'));
    notExecutable = join(dir, 'runner.sh');
    writeFileSync(notExecutable, '#!/bin/sh\nexit 0\n');
    chmodSync(notExecutable, 0o644);
  });
  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  const failures: { what: string; command: () => string[]; error: RegExp }[] = [
    { what: 'a command that does not exist (ENOENT)', command: () => ['/nonexistent/flame-runner'], error: /ENOENT/ },
    { what: 'a command that is not executable (EACCES)', command: () => [notExecutable], error: /EACCES/ },
  ];

  describe('ProcessBackend', function () {
    for (const failure of failures) {
      it(`rejects the boot of ${failure.what} with BootError, then shuts down and disposes at once`, async function () {
        const backend = new ProcessBackend({ command: failure.command(), stdio: 'ignore' });
        await backend.init(context());
        const { error } = await settlesWithin(backend.boot(spec(), new AbortController().signal), 5000, 'boot');
        expect(error).to.be.instanceOf(BootError).with.property('message').that.matches(failure.error);
        const { ms } = await settlesWithin(backend.dispose(), 1000, 'dispose');
        expect(ms).to.be.below(1000);
      });

      it(`lets pool.stop() resolve after calls failed on ${failure.what}`, async function () {
        const pool = await startPool({ name: `fail-${failure.error.source.toLowerCase()}`, backend: new ProcessBackend({ command: failure.command(), stdio: 'ignore' }), max: 1, timeout: 20_000 });
        const { error } = await settlesWithin(pool.call(() => 1), 15_000, 'the call');
        expect(error).to.be.instanceOf(BootError).with.property('message').that.matches(failure.error);
        await settlesWithin(pool.stop(), 5000, 'pool.stop()');
        expect(pool.status().state).to.equal('stopped');
      });
    }

    it('shuts down and disposes a runner process that exited at once, reporting its exit', async function () {
      const exits: string[] = [];
      const backend = new ProcessBackend({ command: [process.execPath, '-e', 'process.exit(3)'], stdio: 'ignore' });
      await backend.init(context(exits));
      const runner = await backend.boot(spec(), new AbortController().signal);
      await waitFor(() => exits.length === 1, 'the exit to be reported');
      await settlesWithin(backend.shutdown(runner), 3000, 'shutdown');
      await settlesWithin(backend.dispose(), 1000, 'dispose');
      expect(exits.join('\n')).to.match(/r-1: runner process \d+ exited with code 3/);
    });

    it('lets pool.stop() resolve after boots of a process that exits at once', async function () {
      const pool = await startPool({ name: 'exits-at-once', backend: new ProcessBackend({ command: [process.execPath, '-e', 'process.exit(1)'], stdio: 'ignore' }), max: 2, timeout: 20_000 });
      const { error } = await settlesWithin(pool.call(() => 1), 15_000, 'the call');
      expect(error).to.be.instanceOf(BootError);
      await settlesWithin(pool.stop(), 5000, 'pool.stop()');
    });
  });

  describe('LocalBackend', function () {
    let server: Server;
    const sockets = new Set<Socket>();
    before(async function () {
      // Accepts connections and never answers: a runner joining it waits on its handshake.
      server = createServer((socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.61', resolve));
    });
    after(async function () {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    });

    const joining = () => {
      const { port } = server.address() as { port: number };
      return {
        FLAME_PARENT: encodeParent({
          parent: `silent@127.0.0.61:${port}`, runner: 'r-1', pool: 'p', backend: 'local',
          idleShutdownAfter: Infinity, shutdownTimeout: 500, failsafeTimeout: 60_000, bootTimeout: 60_000, singleUse: false, log: false,
        }),
        FLAME_COOKIE: 'cookie',
      };
    };

    it('shuts down a runner still joining a parent that does not answer, without waiting for its boot', async function () {
      const exits: string[] = [];
      const backend: Backend = new LocalBackend();
      await backend.init(context(exits));
      const runner = await backend.boot(spec(joining()), new AbortController().signal);
      const { ms } = await settlesWithin(backend.shutdown(runner), 3000, 'shutdown');
      expect(ms).to.be.below(3000);
      await settlesWithin(backend.dispose(), 1000, 'dispose');
      expect(exits).to.have.length(1);
    });

    it('disposes a runner that could not start (no cookie) at once', async function () {
      const exits: string[] = [];
      const backend = new LocalBackend();
      await backend.init(context(exits));
      const { FLAME_PARENT } = joining();
      const runner = await backend.boot(spec({ FLAME_PARENT }), new AbortController().signal);
      await settlesWithin(backend.dispose(), 1000, 'dispose');
      await settlesWithin(backend.shutdown(runner), 1000, 'shutdown');
      expect(exits.join()).to.match(/FLAME_COOKIE is not set/);
    });
  });

  describe('errorLine (why a runner process died, from its stderr)', function () {
    it('picks Node\'s fatal error line, not the stack or the version banner', function () {
      const stderr = [
        'file:///app/job.js:3', '    throw new TypeError("bad input");', '    ^', '',
        'TypeError: bad input', '    at file:///app/job.js:3:11', '    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)', '',
        'Node.js v20.20.2', '',
      ].join('\n');
      expect(errorLine(stderr)).to.equal('TypeError: bad input');
    });

    it('picks a line of ours first, then heap exhaustion, then the last plain line', function () {
      expect(errorLine('warn x\nflame runner: fatal: boom\n    at y\n')).to.equal('fatal: boom');
      expect(errorLine('<--- Last few GCs --->\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n 1: 0xb0 node::Abort()\n')).to.match(/^FATAL ERROR: Reached heap limit/);
      expect(errorLine('cannot start: no GPU\n')).to.equal('cannot start: no GPU');
    });
  });
});

describe('ProcessBackend options', function () {
  it('refuses an environment that is not an object of strings, naming the option', function () {
    for (const env of ['X=1', ['X=1'], { X: 1 }, { '': 'x' }, { 'A=B': 'x' }, null]) {
      expect(() => new ProcessBackend({ env: env as never })).to.throw(InvalidOptionError, /option "env" must be an object of variable names to string values/);
    }
    expect(() => new ProcessBackend({ env: { LOG_LEVEL: 'debug', EMPTY: '' } })).not.to.throw();
  });

  it('refuses bad commands, flags, working directories and stdio', function () {
    expect(() => new ProcessBackend({ command: ['node', ''] })).to.throw(InvalidOptionError, /"command" must be a non-empty array of strings, none empty/);
    expect(() => new ProcessBackend({ execArgv: ['max-old-space-size=100'] })).to.throw(InvalidOptionError, /"execArgv" must be an array of Node flags/);
    expect(() => new ProcessBackend({ command: ['node', 'x.js'], execArgv: ['--inspect'] })).to.throw(InvalidOptionError, /"execArgv" must be left out when "command" is given/);
    expect(() => new ProcessBackend({ cwd: '' })).to.throw(InvalidOptionError, /"cwd" must be a non-empty string/);
    expect(() => new ProcessBackend({ stdio: 'pipe' as never })).to.throw(InvalidOptionError, /"stdio" must be one of "inherit", "ignore"/);
    expect(() => new ProcessBackend({ comand: ['node'] } as never)).to.throw(InvalidOptionError, /unknown option "comand"/);
  });
});
