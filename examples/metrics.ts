/**
 * Pool metrics in Prometheus text at /metrics: `enableMetrics` records on an OpenTelemetry meter
 * provider (here the SDK's, read by the official Prometheus exporter), fed by the library's
 * diagnostics channels. It runs a few calls (one failing) on a process pool, then prints its own
 * /metrics; with `--serve` it keeps serving (and the pool running) until Ctrl-C.
 *
 *   node dist/examples/metrics.js --serve [--port 9464]
 *   curl -s http://127.0.0.1:9464/metrics | grep flame_actors
 */
import { createServer } from 'node:http';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { enableMetrics, Pool, ProcessBackend } from '../src/index.js';

const { values } = parseArgs({ options: { serve: { type: 'boolean' }, port: { type: 'string' } } });

// No server of its own: the exporter's handler is mounted on the app's HTTP server.
const exporter = new PrometheusExporter({ preventServerStart: true });
const provider = new MeterProvider({ readers: [exporter] });
const metrics = await enableMetrics({ meterProvider: provider });
const server = createServer((req, res) => {
  if (req.url === '/metrics') return exporter.getMetricsRequestHandler(req, res);
  res.statusCode = 404;
  res.end('try /metrics\n');
});
server.listen(Number(values.port ?? 0), '127.0.0.1');
await once(server, 'listening');
const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/metrics`;

const pool = await Pool.start({ name: 'metrics-demo', backend: new ProcessBackend({ stdio: 'ignore' }), min: 1, max: 2 });
try {
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => pool.call((n: number) => n * n, [i])));
  console.log(`10 calls: ${results.join(' ')}`);
  await pool.call(() => {
    throw Object.assign(new Error('no invoice'), { code: 'E_NO_INVOICE' });
  }).catch((e: Error & { code?: string }) => console.log(`1 failing call: ${e.code}`));
  console.log(`serving Prometheus metrics at ${url}`);
  if (values.serve) {
    await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
  } else {
    const text = await (await fetch(url)).text();
    console.log(text.split('\n').filter((l) => l.startsWith('flame_actors_calls') || l.startsWith('flame_actors_runners')).join('\n'));
  }
} finally {
  await pool.stop();
  metrics.disable();
  server.close();
  await provider.shutdown();
  console.log('pool stopped');
}
