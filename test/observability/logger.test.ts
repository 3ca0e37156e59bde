import { expect } from 'chai';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startNode } from '../../src/cluster/node.js';
import type { Backend, BackendContext, RunnerInstance, RunnerSpec } from '../../src/flame/backend.js';
import { startRunner, type Runner } from '../../src/runner/runner.js';
import type { StructuredLogger } from '../../src/log.js';
import { Pool } from '../../src/flame/pool.js';
import { ProcessBackend } from '../../src/backends/process/backend.js';
import { startPool } from '../helpers/pools.js';
import { waitFor } from '../helpers/wait.js';

interface Record_ {
  level: number;
  msg: string;
  pool?: string;
  runner?: string;
  node?: string;
}

/** A pino logger writing JSON records into an array. */
function capture(level = 'debug') {
  const records: Record_[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) records.push(JSON.parse(line) as Record_);
      done();
    },
  });
  return { logger: pino({ level }, stream), records };
}

/** Runners in this process, started with a structured logger (as an app doubling as its runner would). */
class LoggedRunners implements Backend {
  readonly name = 'logged-in-process';
  readonly #runners: Promise<Runner>[] = [];
  #context: BackendContext | undefined;
  constructor(readonly logger: StructuredLogger) {}
  async init(context: BackendContext): Promise<void> {
    this.#context = context;
  }
  async boot(spec: RunnerSpec): Promise<RunnerInstance> {
    const runner = startRunner({
      env: { ...spec.env, POD_IP: '127.0.0.1', FLAME_PORT: '0' }, handleSignals: false, catchUncaught: false, logger: this.logger,
      exit: (_code, reason) => this.#context?.runnerExited(spec.id, reason),
    });
    this.#runners.push(runner);
    return { id: spec.id, description: 'in-process' };
  }
  async shutdown(): Promise<void> {}
  async dispose(): Promise<void> {
    await Promise.all(this.#runners.map(async (r) => (await r.catch(() => undefined))?.stop('test over')));
  }
}

describe('Structured logger option (pino-compatible)', function () {
  this.timeout(60_000);
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });

  it('gives a pool\'s records to a pino logger with the pool, runner and node fields', async () => {
    const { logger, records } = capture();
    const pool = await startPool({ name: 'logged', max: 1, backend: new ProcessBackend({ stdio: 'ignore' }), logger });
    await pool.call(() => 1);
    const runner = pool.status().runners[0]!;
    const up = records.find((r) => r.msg.includes('up on'));
    expect(up, JSON.stringify(records)).to.include({ pool: 'logged', runner: runner.id, node: runner.node, level: 30 });
    expect(records.find((r) => r.msg.startsWith('started with backend'))).to.include({ pool: 'logged' });
  });

  it('gives a node\'s records to a pino logger with the node field', async () => {
    const { logger, records } = capture();
    const a = await startNode({ name: 'logged-a@127.0.0.65', port: 0, cookie: 'one', logger });
    const b = await startNode({ name: 'logged-b@127.0.0.66', port: 0, cookie: 'two', log: false });
    stops.push(() => a.stop(), () => b.stop());
    await b.connect(a.name).catch(() => {});
    await waitFor(() => records.some((r) => r.msg.includes('refused connection')), 'the refusal to be logged', 10_000);
    const refused = records.find((r) => r.msg.includes('refused connection'))!;
    expect(refused).to.include({ node: a.name, level: 40 });
  });

  it('leaves out records below the logger\'s own level, and below `log` when it is given', async () => {
    const quiet = capture('warn');
    const pool = await startPool({ name: 'logged-quiet', max: 1, backend: new ProcessBackend({ stdio: 'ignore' }), logger: quiet.logger });
    await pool.call(() => 1);
    expect(quiet.records).to.deep.equal([]);
    const loud = capture('debug');
    const errorsOnly = await startPool({ name: 'logged-errors', max: 1, backend: new ProcessBackend({ stdio: 'ignore' }), logger: loud.logger, log: 'error' });
    await errorsOnly.call(() => 1);
    expect(loud.records).to.deep.equal([]);
  });

  it('gives a runner\'s records to a pino logger passed to startRunner, with its node, pool and runner', async () => {
    const { logger, records } = capture();
    const pool = await startPool({ name: 'logged-runner', max: 1, backend: new LoggedRunners(logger), log: 'info', logSink: () => {} });
    await pool.call(() => 1);
    const runner = pool.status().runners[0]!;
    await waitFor(() => records.some((r) => r.msg.includes('ready for')), 'the runner\'s ready record', 10_000);
    const ready = records.find((r) => r.msg.includes('ready for'))!;
    expect(ready).to.include({ pool: 'logged-runner', runner: runner.id, node: runner.node, level: 30 });
  });

  it('keeps `log` and `logSink` working', async () => {
    const lines: string[] = [];
    const pool = await startPool({ name: 'logged-sink', max: 1, backend: new ProcessBackend({ stdio: 'ignore' }), log: 'info', logSink: (level, m) => lines.push(`${level} ${m}`) });
    await pool.call(() => 1);
    expect(lines.some((l) => /^info \[pool logged-sink\] runner logged-sink-1 up on /.test(l)), lines.join('\n')).to.equal(true);
  });

  it('refuses a logger without the pino methods, naming the option', async () => {
    const error = await Pool.start({ max: 1, logger: { info() {} } as never }).then(() => undefined, (e: unknown) => e);
    expect(error).to.have.property('code', 'FLAME_ERR_INVALID_OPTION');
    expect((error as Error).message).to.include('logger');
  });
});
