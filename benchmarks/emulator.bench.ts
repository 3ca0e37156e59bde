/**
 * Emulated-cluster benchmarks (issue: the emulated cluster at scale): how long a pod takes from
 * create to Running on a quiet emulator (beside a bare process spawn-and-connect, measured in the
 * same run), and how fast the API server answers GETs while 100 pods start.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Agent, request } from 'node:https';
import { median, percentile, round, type Row } from './report.js';

export interface EmulatorBenchOptions {
  podStartSamples: number;
  loadPods: number;
}

const SLEEPER = "process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000);";

const HOST = new URL('./emulator-host.js', import.meta.url);

interface Cluster {
  url: string;
  caPem: string;
  adminToken: string;
  podProcesses(): Promise<number>;
  stop(): Promise<void>;
}

/** An emulated cluster in a child process (see emulator-host.ts). */
async function startCluster(): Promise<Cluster> {
  const child: ChildProcess = fork(HOST, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [info] = (await once(child, 'message')) as [{ url: string; caPem: string; adminToken: string }];
  return {
    ...info,
    async podProcesses() {
      const reply = once(child, 'message') as Promise<[{ processes: number }]>;
      child.send('processes');
      return (await reply)[0].processes;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

interface Client {
  call(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }>;
  watch(path: string, onEvent: (event: { type: string; object: { metadata: { name: string }; status?: { phase?: string } } }) => void): () => void;
  close(): void;
}

function client(cluster: Cluster): Client {
  const agent = new Agent({ keepAlive: true, maxSockets: 32, ca: cluster.caPem });
  const headers = { Authorization: `Bearer ${cluster.adminToken}` };
  return {
    call(method, path, body) {
      return new Promise((resolve, reject) => {
        const payload = body === undefined ? undefined : JSON.stringify(body);
        const req = request(`${cluster.url}${path}`, { method, agent, headers: { ...headers, ...(payload ? { 'Content-Type': 'application/json' } : {}) } }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        });
        req.on('error', reject);
        req.end(payload);
      });
    },
    watch(path, onEvent) {
      const req = request(`${cluster.url}${path}`, { ca: cluster.caPem, headers }, (res) => {
        let buffered = '';
        res.on('data', (c: Buffer) => {
          buffered += c.toString();
          let newline = buffered.indexOf('\n');
          while (newline >= 0) {
            const line = buffered.slice(0, newline);
            buffered = buffered.slice(newline + 1);
            if (line.trim()) onEvent(JSON.parse(line) as Parameters<typeof onEvent>[0]);
            newline = buffered.indexOf('\n');
          }
        });
        res.on('error', () => {});
      });
      req.on('error', () => {});
      req.end();
      return () => req.destroy();
    },
    close() {
      agent.destroy();
    },
  };
}

function pod(name: string): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { bench: 'emulator' } },
    spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: 'node:20', command: ['node', '-e', SLEEPER] }] },
  };
}

/** Resolves once every named pod has been seen Running through the watch. */
function runningWatcher(api: Client, namespace: string): { until(names: string[]): Promise<void>; stop(): void; seen: Map<string, number> } {
  const seen = new Map<string, number>();
  let check: (() => void) | undefined;
  const stop = api.watch(`/api/v1/namespaces/${namespace}/pods?watch=true`, (event) => {
    if (event.object.status?.phase === 'Running' && !seen.has(event.object.metadata.name)) {
      seen.set(event.object.metadata.name, performance.now());
      check?.();
    }
  });
  return {
    seen,
    stop,
    until(names) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`pods not Running in time: ${names.filter((n) => !seen.has(n)).length} left`)), 300_000);
        check = () => {
          if (names.every((n) => seen.has(n))) {
            clearTimeout(timer);
            resolve();
          }
        };
        check();
      });
    },
  };
}

async function deleteAll(api: Client, cluster: Cluster, namespace: string): Promise<void> {
  await api.call('DELETE', `/api/v1/namespaces/${namespace}/pods?gracePeriodSeconds=0`);
  const deadline = Date.now() + 60_000;
  while ((await cluster.podProcesses()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

async function podStart(samples: number): Promise<number> {
  const cluster = await startCluster();
  const api = client(cluster);
  const watcher = runningWatcher(api, 'default');
  const times: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const name = `start-${i}`;
      const start = performance.now();
      const created = await api.call('POST', '/api/v1/namespaces/default/pods', pod(name));
      if (created.status !== 201) throw new Error(`create failed: ${created.text}`);
      await watcher.until([name]);
      times.push(watcher.seen.get(name)! - start);
      await deleteAll(api, cluster, 'default');
    }
  } finally {
    watcher.stop();
    api.close();
    await cluster.stop();
  }
  return median(times);
}

async function apiUnderLoad(pods: number): Promise<{ p99: number; p50: number; startAll: number }> {
  const cluster = await startCluster();
  const api = client(cluster);
  // The probe has its own connection: it measures the server, not a client-side queue behind the creates.
  const prober = client(cluster);
  const watcher = runningWatcher(api, 'load');
  const latencies: number[] = [];
  let loading = true;
  try {
    await api.call('POST', '/api/v1/namespaces', { metadata: { name: 'load' } });
    await api.call('POST', '/api/v1/namespaces/load/configmaps', { metadata: { name: 'probe' } });
    const probe = (async () => {
      while (loading) {
        const start = performance.now();
        await prober.call('GET', '/api/v1/namespaces/load/configmaps/probe');
        latencies.push(performance.now() - start);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const names = Array.from({ length: pods }, (_, i) => `load-${i}`);
    const start = performance.now();
    await Promise.all(names.map((name) => api.call('POST', '/api/v1/namespaces/load/pods', pod(name))));
    await watcher.until(names);
    const startAll = performance.now() - start;
    loading = false;
    await probe;
    latencies.sort((a, b) => a - b);
    return { p99: percentile(latencies, 0.99), p50: percentile(latencies, 0.5), startAll };
  } finally {
    loading = false;
    watcher.stop();
    await deleteAll(api, cluster, 'load').catch(() => {});
    api.close();
    prober.close();
    await cluster.stop();
  }
}

export async function emulatorBenchmarks(opts: EmulatorBenchOptions, progress: (s: string) => void): Promise<Row[]> {
  progress('emulator: pod create to Running');
  const startMs = await podStart(opts.podStartSamples);
  progress(`emulator: API GET latency while ${opts.loadPods} pods start`);
  const load = await apiUnderLoad(opts.loadPods);
  return [
    { name: 'emulator-pod-start-p50', value: round(startMs), unit: 'ms' },
    { name: 'emulator-api-p99-under-load', value: round(load.p99), unit: 'ms' },
    { name: 'emulator-api-p50-under-load', value: round(load.p50), unit: 'ms' },
    { name: `emulator-${opts.loadPods}-pods-running`, value: round(load.startAll, 0), unit: 'ms' },
  ];
}

export const emulatorComparisons = [
  { name: 'emulator-pod-start-p50', baseline: 'process-spawn-connect', target: { op: '<=' as const, limit: 1.5 } },
  { name: 'emulator-api-p99-under-load', target: { op: '<=' as const, limit: 100 } },
];
