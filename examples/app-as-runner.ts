/**
 * FLAME's usual shape: one program is both the app and its runners. Started normally it is the
 * app (here a tiny HTTP server whose handler offloads work to a pool); started by the pool, with
 * FLAME_PARENT set, `isRunner()` is true and it boots as a runner instead, skipping the server,
 * so shipped closures and moduleRefs find the app's own modules and state.
 *
 *   npm run build && node dist/examples/app-as-runner.js
 */
import http from 'node:http';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Pool, ProcessBackend, isRunner, moduleRef, parentInfo, startRunner } from 'flame-actors';

/** App code a runner runs through moduleRef: it lives in this very file. */
export function invoiceTotal(lines: { qty: number; price: number }[]): { total: number; computedBy: string } {
  const total = lines.reduce((sum, line) => sum + line.qty * line.price, 0);
  return { total, computedBy: `${parentInfo()?.runner ?? 'app'} (pid ${process.pid})` };
}

if (isRunner()) {
  // A runner: no HTTP server; connect back to the parent named in FLAME_PARENT and serve it.
  await startRunner();
} else {
  const self = fileURLToPath(import.meta.url);
  const pool = await Pool.start({
    name: 'invoices',
    max: 2,
    // The runner command is this program itself (as FLAME runs the same release on runners).
    backend: new ProcessBackend({ command: [process.execPath, self], stdio: 'ignore' }),
  });
  const server = http.createServer(async (req, res) => {
    const lines = [{ qty: 2, price: 15 }, { qty: 1, price: 12.5 }];
    const result = await pool.call(moduleRef<typeof invoiceTotal>(import.meta.url, 'invoiceTotal'), [lines]);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  try {
    const response = await fetch(`http://127.0.0.1:${port}/invoice`);
    const body = (await response.json()) as { total: number; computedBy: string };
    console.log(`GET /invoice -> total ${body.total}, computed by runner ${body.computedBy}, app pid ${process.pid}`);
  } finally {
    server.close();
    await pool.stop();
  }
  console.log('app stopped');
}
