import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { ProcessBackend } from '../../src/backends/process/backend.js';
import { startNode } from '../../src/cluster/node.js';
import { enableMetrics } from '../../src/observability/metrics.js';
import { startPool } from '../helpers/pools.js';
import { waitFor } from '../helpers/wait.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/metrics.js', import.meta.url));

/** Value of the series `name{...labels}` in Prometheus text (labels matched as a subset). */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (Object.entries(labels).every(([k, v]) => m[2]!.includes(`${k}="${v}"`))) return Number(m[3]);
  }
  return undefined;
}

describe('Metrics (examples/metrics.ts, OpenTelemetry Prometheus exporter)', function () {
  this.timeout(60_000);
  let child: ChildProcess | undefined;

  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
    child = undefined;
  });

  it('serves /metrics with calls by outcome, wait/run/boot histograms, runner and queue gauges, link bytes and messages', async () => {
    const started = spawn(process.execPath, [EXAMPLE, '--serve'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    let out = '';
    started.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    started.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(() => /serving Prometheus metrics at (\S+)/.test(out) || started.exitCode !== null, 'the example to serve /metrics', 40_000, 20);
    const url = /serving Prometheus metrics at (\S+)/.exec(out)?.[1];
    expect(url, out).to.be.a('string');
    const text = await (await fetch(url!)).text();
    const pool = { pool: 'metrics-demo' };
    expect(sample(text, 'flame_actors_calls_total', { ...pool, outcome: 'ok' }), text).to.equal(10);
    expect(sample(text, 'flame_actors_calls_total', { ...pool, outcome: 'E_NO_INVOICE' })).to.equal(1);
    expect(sample(text, 'flame_actors_call_wait_time_count', pool)).to.equal(11);
    expect(sample(text, 'flame_actors_call_run_time_count', { ...pool, outcome: 'ok' })).to.equal(10);
    expect(sample(text, 'flame_actors_call_run_time_bucket', { ...pool, outcome: 'ok', le: '+Inf' })).to.equal(10);
    expect(sample(text, 'flame_actors_boot_time_count', { ...pool, backend: 'process', outcome: 'ok' })).to.equal(1);
    expect(sample(text, 'flame_actors_runners', { ...pool, state: 'ready' })).to.equal(1);
    expect(sample(text, 'flame_actors_runners', { ...pool, state: 'booting' })).to.equal(0);
    expect(sample(text, 'flame_actors_queued_callers', pool)).to.equal(0);
    expect(sample(text, 'flame_actors_link_bytes_total', { direction: 'out' })).to.be.above(0);
    expect(sample(text, 'flame_actors_link_messages_total', { direction: 'in' })).to.be.at.least(11);
    const exited = once(started, 'exit');
    started.kill('SIGTERM');
    const [code] = await exited;
    expect(code, out).to.equal(0);
    expect(out).to.include('pool stopped');
  });
});

/** A reader the test collects from when it wants. */
class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

/** Sum of the data points of `name` whose attributes include `attributes`. */
async function total(reader: TestReader, name: string, attributes: Record<string, string> = {}): Promise<number> {
  const { resourceMetrics } = await reader.collect();
  let sum = 0;
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name !== name) continue;
      for (const point of metric.dataPoints) {
        if (!Object.entries(attributes).every(([k, v]) => point.attributes[k] === v)) continue;
        const value = point.value as number | { count: number };
        sum += typeof value === 'number' ? value : value.count;
      }
    }
  }
  return sum;
}

describe('enableMetrics', function () {
  this.timeout(60_000);
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('counts queue overloads, refused handshakes and failed boots, and stops counting after disable()', async () => {
    const reader = new TestReader();
    const provider = new MeterProvider({ readers: [reader] });
    const metrics = await enableMetrics({ meterProvider: provider });
    cleanups.push(() => provider.shutdown(), () => metrics.disable());

    const pool = await startPool({ name: 'counted', min: 1, max: 1, maxConcurrency: 1, maxQueue: 0 });
    const slow = pool.call(() => new Promise((r) => setTimeout(r, 300)));
    await pool.call(() => 1).catch(() => {});
    await slow;
    expect(await total(reader, 'flame_actors.queue.overloads', { pool: 'counted' })).to.equal(1);
    expect(await total(reader, 'flame_actors.calls', { pool: 'counted', outcome: 'FLAME_ERR_POOL_OVERLOADED' })).to.equal(1);
    expect(await total(reader, 'flame_actors.calls', { pool: 'counted', outcome: 'ok' })).to.equal(1);

    const a = await startNode({ name: 'counted-a@127.0.0.67', port: 0, cookie: 'one', log: false });
    const b = await startNode({ name: 'counted-b@127.0.0.68', port: 0, cookie: 'two', log: false });
    cleanups.push(() => a.stop(), () => b.stop());
    await b.connect(a.name).catch(() => {});
    await waitFor(async () => (await total(reader, 'flame_actors.handshakes.refused', { node: a.name })) === 1, 'the refusal to be counted', 10_000, 20);

    const failing = await startPool({
      name: 'counted-boots', max: 1, bootTimeout: 10_000,
      backend: new ProcessBackend({ stdio: 'ignore', command: [process.execPath, '-e', 'process.exit(3)'] }),
    });
    await failing.call(() => 1, [], { timeout: 20_000 }).catch(() => {});
    expect(await total(reader, 'flame_actors.boot.time', { pool: 'counted-boots', backend: 'process' })).to.be.at.least(1);
    expect(await total(reader, 'flame_actors.boot.time', { pool: 'counted-boots', outcome: 'ok' })).to.equal(0);

    metrics.disable();
    const again = pool.call(() => new Promise((r) => setTimeout(r, 300)));
    await pool.call(() => 1).catch(() => {});
    await again;
    expect(await total(reader, 'flame_actors.queue.overloads', { pool: 'counted' })).to.equal(1);
  });

  it('refuses an unknown option, naming it', async () => {
    const error = await enableMetrics({ meter: {} } as never).then(() => undefined, (e: unknown) => e);
    expect(error).to.have.property('code', 'FLAME_ERR_INVALID_OPTION');
    expect((error as Error).message).to.include('meter');
  });
});
