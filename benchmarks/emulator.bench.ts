/**
 * Emulated-cluster benchmarks (issue: the emulated cluster at scale): how long a pod takes from
 * create to Running on a quiet emulator (beside a bare process spawn-and-connect, measured in the
 * same run), and how fast the API server answers GETs while 100 pods start.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Agent, request } from 'node:https';
import { loadavg } from 'node:os';
import { WebSocketServer } from 'ws';
import { median, percentile, round, type Comparison, type Row } from './report.js';
import type { BenchContext } from './suite.js';

const PROBE = new URL('./spawn-probe.js', import.meta.url).pathname;

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

interface StartSample {
  bare: number;
  running: number;
  connected: number;
}

/**
 * One pod at a time on a quiet emulator, interleaved with the same probe started as a bare
 * process: create to Running (the watch event), and create to the pod's first ws message.
 */
async function podStart(samples: number): Promise<StartSample[]> {
  const cluster = await startCluster();
  const api = client(cluster);
  const watcher = runningWatcher(api, 'default');
  const server = new WebSocketServer({ host: '127.0.0.25', port: 0, perMessageDeflate: false });
  await once(server, 'listening');
  const url = `ws://127.0.0.25:${(server.address() as { port: number }).port}`;
  const firstMessage = (): Promise<number> =>
    new Promise((resolve) =>
      server.once('connection', (ws) =>
        ws.once('message', () => {
          resolve(performance.now());
          ws.close();
        }),
      ),
    );
  const results: StartSample[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      let start = performance.now();
      let connected = firstMessage();
      const child = spawn(process.execPath, [PROBE], { env: { ...process.env, PROBE_URL: url }, stdio: 'ignore' });
      const bare = (await connected) - start;
      await once(child, 'exit');

      const name = `start-${i}`;
      connected = firstMessage();
      start = performance.now();
      const created = await api.call('POST', '/api/v1/namespaces/default/pods', probePod(name, url));
      if (created.status !== 201) throw new Error(`create failed: ${created.text}`);
      await watcher.until([name]);
      const running = watcher.seen.get(name)! - start;
      results.push({ bare, running, connected: (await connected) - start });
      await deleteAll(api, cluster, 'default');
    }
  } finally {
    server.close();
    watcher.stop();
    api.close();
    await cluster.stop();
  }
  return results;
}

function probePod(name: string, url: string): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'main', image: 'node:20', command: ['node', PROBE], env: [{ name: 'PROBE_URL', value: url }] }],
    },
  };
}

/** GETs of one config map, back to back (5 ms apart), on a connection of their own, until `until` settles. */
async function probeGets(prober: Client, until: Promise<unknown>): Promise<number[]> {
  const latencies: number[] = [];
  let loading = true;
  const done = until.finally(() => (loading = false));
  while (loading) {
    const start = performance.now();
    await prober.call('GET', '/api/v1/namespaces/load/configmaps/probe');
    latencies.push(performance.now() - start);
    await new Promise((r) => setTimeout(r, 5));
  }
  await done;
  return latencies;
}

interface LoadSample {
  /** GET latencies pooled over the measurement's bursts, and the same probe on the idle emulator. */
  p99: number;
  p50: number;
  idleP99: number;
  samples: number;
  /** Create to all Running, per burst. */
  running: number[];
}

/**
 * One measurement: a fresh emulator, then `bursts` times: GETs for a while on the idle emulator,
 * then GETs while `pods` pods are created at once and start, until all are Running (then deleted,
 * and their processes gone, before the next burst). The GET latencies of all bursts are pooled: one
 * burst gives about a hundred samples, so its p99 would be its second-slowest GET.
 */
async function apiUnderLoad(pods: number, bursts: number): Promise<LoadSample> {
  const cluster = await startCluster();
  const api = client(cluster);
  // The probe has its own connection: it measures the server, not a client-side queue behind the creates.
  const prober = client(cluster);
  const watcher = runningWatcher(api, 'load');
  const loaded: number[] = [];
  const idle: number[] = [];
  const running: number[] = [];
  try {
    await api.call('POST', '/api/v1/namespaces', { metadata: { name: 'load' } });
    await api.call('POST', '/api/v1/namespaces/load/configmaps', { metadata: { name: 'probe' } });
    for (let burst = 0; burst < bursts; burst++) {
      idle.push(...(await probeGets(prober, new Promise((r) => setTimeout(r, 300)))));
      const names = Array.from({ length: pods }, (_, i) => `load-${burst}-${i}`);
      const start = performance.now();
      const allRunning = (async () => {
        const created = await Promise.all(names.map((name) => api.call('POST', '/api/v1/namespaces/load/pods', pod(name))));
        const refused = created.find((c) => c.status !== 201);
        if (refused) throw new Error(`create failed: ${refused.text}`);
        await watcher.until(names);
      })();
      loaded.push(...(await probeGets(prober, allRunning)));
      running.push(performance.now() - start);
      await deleteAll(api, cluster, 'load');
    }
    const sorted = [...loaded].sort((a, b) => a - b);
    return {
      p99: percentile(sorted, 0.99),
      p50: percentile(sorted, 0.5),
      idleP99: percentile([...idle].sort((a, b) => a - b), 0.99),
      samples: sorted.length,
      running,
    };
  } finally {
    watcher.stop();
    await deleteAll(api, cluster, 'load').catch(() => {});
    api.close();
    prober.close();
    await cluster.stop();
  }
}

function spread(values: number[], digits = 1): Pick<Row, 'value' | 'min' | 'max'> {
  return { value: round(median(values), digits), min: round(Math.min(...values), digits), max: round(Math.max(...values), digits) };
}

export async function emulatorBenchmarks(ctx: BenchContext): Promise<Row[]> {
  const samples = ctx.quick ? 3 : 7;
  const loadPods = 100;
  const repetitions = ctx.quick ? 2 : 5;
  const bursts = ctx.quick ? 1 : 3;
  const loadStart = loadavg()[0]!;
  ctx.progress(`load average at start ${loadStart.toFixed(2)} (1 min)`, 0);
  ctx.progress('pod create to Running, beside a bare spawn-and-connect', 0);
  const starts = await podStart(samples);
  const loads: LoadSample[] = [];
  for (let i = 0; i < repetitions; i++) {
    ctx.progress(`API GET latency while ${loadPods} pods start: measurement ${i + 1} of ${repetitions} (${bursts} burst${bursts > 1 ? 's' : ''} each)`, 0.2 + (0.8 * i) / repetitions);
    loads.push(await apiUnderLoad(loadPods, bursts));
  }
  const loadEnd = loadavg()[0]!;
  ctx.progress(`load average at end ${loadEnd.toFixed(2)} (1 min)`, 1);
  const pooled = `${bursts} burst${bursts > 1 ? 's' : ''} of ${loadPods} pods pooled per measurement (~${Math.round(median(loads.map((l) => l.samples)))} GETs); median of ${repetitions} measurements, each on a fresh emulator`;
  return [
    { name: 'emulator-load-average-start', value: round(loadStart, 2), unit: 'runnable (1 min)', detail: 'the machine\'s load before the suite (other work moves every figure)' },
    { name: 'process-spawn-connect-emulator', value: round(median(starts.map((s) => s.bare))), unit: 'ms', detail: 'bare Node probe to its first ws message, interleaved with the pod samples' },
    { name: 'emulator-pod-start-p50', value: round(median(starts.map((s) => s.running))), unit: 'ms', detail: 'create to the Running watch event, one pod on a quiet emulator' },
    { name: 'emulator-pod-connect-p50', value: round(median(starts.map((s) => s.connected))), unit: 'ms', detail: 'create to the pod process\'s first ws message (the same probe)' },
    { name: 'emulator-api-p99-idle', ...spread(loads.map((l) => l.idleP99)), unit: 'ms', detail: 'the same GETs on the same emulator between bursts, no pod starting' },
    { name: 'emulator-api-p99-under-load', ...spread(loads.map((l) => l.p99)), unit: 'ms', detail: `GET on a kept-alive connection while ${loadPods} pods are created and start; ${pooled}` },
    { name: 'emulator-api-p50-under-load', ...spread(loads.map((l) => l.p50)), unit: 'ms' },
    { name: 'emulator-pods-running', ...spread(loads.flatMap((l) => l.running), 0), unit: 'ms', detail: `${loadPods} pods created at once, until all are Running (median over every burst)` },
    { name: 'emulator-load-average-end', value: round(loadEnd, 2), unit: 'runnable (1 min)' },
  ];
}

export const emulatorComparisons: Comparison[] = [
  { name: 'emulator-pod-start-p50', baseline: 'process-spawn-connect-emulator', target: { op: '<=', limit: 1.5 } },
  { name: 'emulator-pod-connect-p50', baseline: 'process-spawn-connect-emulator', target: { op: '<=', limit: 1.5 } },
  { name: 'emulator-api-p99-under-load', target: { op: '<=', limit: 100 } },
];
