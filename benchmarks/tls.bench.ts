/**
 * Encrypted links (tls: 'auto') against plaintext ones, in the same run, interleaved: remote
 * dispatch throughput and one-at-a-time query latency between a node and a peer in its own
 * process (as a runner is). The `-plaintext` rows re-measure `remote-dispatch` and
 * `remote-query-p50` beside each TLS run, so the ratio compares like with like.
 */
import type { Ref } from 'nact';
import { query } from 'nact';
import { startNode } from '../src/cluster/node.js';
import { countTo, forkPeer, latencies, stopPeer, type ClusterBenchOptions, type CountMsg } from './cluster.bench.js';
import { median, percentile, round, type Comparison, type Row } from './report.js';

const COOKIE = 'tls-bench-cookie';

async function link(encrypted: boolean, opts: ClusterBenchOptions): Promise<{ dispatch: number; p50: number }> {
  const tls = encrypted ? 'auto' : false;
  const node = await startNode({ name: 'tls-bench@127.0.0.24', port: 0, cookie: COOKIE, log: 'warn', tls });
  const { child, ready } = forkPeer({
    BENCH_MODE: 'flame', FLAME_NODE_NAME: 'tls-peer@127.0.0.25', FLAME_PORT: '0', FLAME_COOKIE: COOKIE, FLAME_TLS: encrypted ? 'auto' : 'off',
  });
  try {
    const peer = String((await ready).node);
    await node.connect(peer);
    const dispatch = await countTo(node, node.remoteRef<CountMsg>(peer, 'counter'), opts.messages);
    const echo = node.remoteRef<{ value: unknown; sender: Ref<unknown> }>(peer, 'echo');
    let i = 0;
    const samples = await latencies(opts.roundTrips, () => query(echo, (sender) => ({ value: { n: i++ }, sender }), 10_000));
    return { dispatch, p50: percentile(samples, 0.5) };
  } finally {
    await stopPeer(child);
    await node.stop();
  }
}

export const tlsComparisons: Comparison[] = [
  { name: 'remote-dispatch-tls', baseline: 'remote-dispatch-plaintext', target: { op: '>=', limit: 0.7 } },
  { name: 'remote-query-p50-tls', baseline: 'remote-query-p50-plaintext', target: { op: '<=', limit: 1.3 } },
];

/** Plaintext and TLS runs alternate (which goes first alternates too); medians are reported. */
export async function tlsBenchmarks(opts: ClusterBenchOptions, progress: (s: string) => void): Promise<Row[]> {
  const runs: Record<string, number[]> = {};
  const add = (k: string, v: number) => (runs[k] ??= []).push(v);
  for (let rep = 1; rep <= opts.repetitions; rep++) {
    for (const encrypted of rep % 2 === 1 ? [false, true] : [true, false]) {
      progress(`tls: repetition ${rep}/${opts.repetitions}: ${encrypted ? 'tls' : 'plaintext'}`);
      const r = await link(encrypted, opts);
      const suffix = encrypted ? 'tls' : 'plaintext';
      add(`remote-dispatch-${suffix}`, r.dispatch);
      add(`remote-query-p50-${suffix}`, r.p50);
    }
  }
  const row = (name: string, unit: string, digits = 0): Row => ({ name, value: round(median(runs[name]!), digits), unit });
  return [
    row('remote-dispatch-tls', 'msgs/s'),
    row('remote-dispatch-plaintext', 'msgs/s'),
    row('remote-query-p50-tls', 'us', 1),
    row('remote-query-p50-plaintext', 'us', 1),
  ];
}
