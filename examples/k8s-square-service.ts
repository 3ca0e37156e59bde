/**
 * The deploy kit's app (deploy/): an HTTP service whose work runs on runner pods. The same
 * program is the app and, started by its pool in a runner pod, the runner (`isRunner()`), so the
 * image in deploy/Dockerfile serves both.
 *
 *   GET /square?x=7  ->  {"result":49,"runner":"square-1@10.42.0.17"}   (computed on a runner pod)
 *   GET /healthz     ->  {"ok":true}
 *
 * In the kit's Deployment (FLAME_BACKEND=kubernetes) runners are pods; run elsewhere, they are
 * local processes: `npm run build && node dist/examples/k8s-square-service.js`, then
 * `curl 'http://127.0.0.1:8080/square?x=7'`.
 */
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { isFlameError, isRunner, KubernetesBackend, moduleRef, parentInfo, Pool, ProcessBackend, startRunner, stopOnSignals, type Backend } from '../src/index.js';

/** Runs on a runner: the square, and the node name of the runner that computed it. */
export function square(x: number): { result: number; runner: string } {
  const fixed = process.env.FLAME_PORT;
  const port = fixed && fixed !== '0' && fixed !== '4370' ? `:${fixed}` : '';
  return { result: x * x, runner: `${parentInfo()?.runner ?? 'app'}@${process.env.POD_IP ?? '127.0.0.1'}${port}` };
}

/** `x` as a finite number, or undefined. */
function parseX(url: URL): number | undefined {
  const raw = url.searchParams.get('x');
  if (raw === null || raw.trim() === '') return undefined;
  const x = Number(raw);
  return Number.isFinite(x) ? x : undefined;
}

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

if (isRunner()) {
  // Started by the pool in a runner pod: serve the parent, no web server.
  await startRunner();
} else {
  const backend: Backend = process.env.FLAME_BACKEND === 'kubernetes'
    ? new KubernetesBackend()
    : new ProcessBackend({ command: [process.execPath, fileURLToPath(import.meta.url)] });
  const pool = await Pool.start({
    name: 'square',
    backend,
    max: Number(process.env.SQUARE_MAX_RUNNERS || 4),
    maxConcurrency: 20,
    idleShutdownAfter: 60_000,
    // In-flight calls get 10 s at shutdown: within the kit's terminationGracePeriodSeconds (45).
    shutdownTimeout: 10_000,
  });
  const squareRef = moduleRef<typeof square>(import.meta.url, 'square');
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://app');
    if (req.method !== 'GET') return reply(res, 405, { error: 'GET only' });
    if (url.pathname === '/healthz') return reply(res, 200, { ok: true });
    if (url.pathname !== '/square') return reply(res, 404, { error: 'try GET /square?x=7' });
    const x = parseX(url);
    if (x === undefined) return reply(res, 400, { error: 'x must be a number, e.g. /square?x=7' });
    pool.call(squareRef, [x]).then(
      (answer) => reply(res, 200, answer),
      (error: unknown) => reply(res, 503, { error: (error as Error).message, code: isFlameError(error) ? error.code : undefined }),
    );
  });
  // Each pod listens on its own IP (POD_IP), as the emulated cluster's pods share one host.
  const port = Number(process.env.PORT || 8080);
  server.listen(port, process.env.POD_IP || '127.0.0.1');
  stopOnSignals(pool, {
    onStopped: (outcome) => {
      server.close();
      process.stdout.write(`stopped on ${outcome.signal} in ${Math.round(outcome.ms)} ms${outcome.graceful ? '' : ' (forced)'}\n`);
    },
  });
  process.stdout.write(`square service on http://${process.env.POD_IP || '127.0.0.1'}:${port} (runners: ${backend.name})\n`);
}
