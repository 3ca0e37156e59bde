/**
 * A TCP proxy in front of the API server that can make the connections open through it go
 * silent without closing them (no FIN, no RST): as a dead node, a NAT that forgot the flow or a
 * partitioned network leaves a watch. New connections still pass.
 */
import { createServer, connect, type Socket } from 'node:net';

export interface BlackholeProxy {
  /** `https://127.0.0.1:PORT`, to put in a kubeconfig. */
  readonly url: string;
  /** Silences every connection open now; returns how many. */
  silence(): number;
  close(): Promise<void>;
}

export async function startBlackholeProxy(targetHost: string, targetPort: number): Promise<BlackholeProxy> {
  const pairs = new Set<{ client: Socket; upstream: Socket; silent: boolean }>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, targetHost);
    const pair = { client, upstream, silent: false };
    pairs.add(pair);
    // Data is forwarded until the pair is silenced; then it is dropped, and nothing is closed.
    client.on('data', (chunk) => {
      if (!pair.silent) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!pair.silent) client.write(chunk);
    });
    const end = () => {
      if (pair.silent) return;
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `https://127.0.0.1:${port}`,
    silence() {
      let count = 0;
      for (const pair of pairs) {
        if (pair.silent) continue;
        pair.silent = true;
        count++;
      }
      return count;
    },
    async close() {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
