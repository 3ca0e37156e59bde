/**
 * `serveStatus()`: an opt-in HTTP endpoint in the app answering `GET /status` with the pools of
 * this process (their runners, loads and queues) as JSON, for `flame-actors status` or any
 * monitoring that reads JSON. It listens on loopback unless told otherwise: it tells anyone who
 * can reach it what runs where.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { livePools, type PoolSnapshot } from './diagnostics.js';
import { OptionReader } from '../validate.js';

export interface StatusServerOptions {
  /** Address to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port. Default 9465; 0 takes any free port. */
  port?: number;
}

export interface StatusServer {
  /** The endpoint, e.g. `http://127.0.0.1:9465/status`. */
  readonly url: string;
  close(): Promise<void>;
}

/** A pool as the endpoint reports it. */
export interface PoolReport extends PoolSnapshot {
  pool: string;
  /** The parent node its runners connect to. */
  node: string;
}

/** What `GET /status` answers. */
export interface StatusReport {
  pid: number;
  uptimeSeconds: number;
  pools: PoolReport[];
}

export const STATUS_DEFAULTS = { host: '127.0.0.1', port: 9465, path: '/status' } as const;

/** The pools of this process, now. */
export function statusReport(): StatusReport {
  const pools: PoolReport[] = [];
  for (const p of livePools()) pools.push({ pool: p.pool, node: p.node, ...p.snapshot() });
  return { pid: process.pid, uptimeSeconds: Math.round(process.uptime()), pools };
}

export async function serveStatus(options: StatusServerOptions = {}): Promise<StatusServer> {
  const r = new OptionReader('serveStatus', options, ['host', 'port']);
  const host = r.string('host', STATUS_DEFAULTS.host);
  const port = r.int('port', STATUS_DEFAULTS.port, 0, 65535);
  const server: Server = createServer((req, res) => {
    // Any other method or path is a 404: nothing here reads a request body.
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== STATUS_DEFAULTS.path) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`GET ${STATUS_DEFAULTS.path}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(statusReport())}\n`);
  });
  server.listen(port, host);
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => Promise.reject(e as Error))]);
  const address = server.address() as { address: string; port: number };
  const shown = address.address.includes(':') ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}${STATUS_DEFAULTS.path}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
