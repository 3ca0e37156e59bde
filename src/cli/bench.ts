/**
 * `flame-actors bench`: the benchmark suites (benchmarks/run.ts) on the backend of your choice,
 * from a laptop, a CI job or an app's pod in a cluster. `npm run bench` in this repository is this
 * command with `--suite all`.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { BACKEND_NAMES } from '../backends/default.js';
import { KubernetesBackend } from '../backends/kubernetes/backend.js';
import { LocalBackend } from '../backends/local/backend.js';
import { ProcessBackend } from '../backends/process/backend.js';
import { InvalidOptionError } from '../errors.js';
import type { Backend } from '../flame/backend.js';
import { runBenchmarks, suites, type BackendName } from '../../benchmarks/run.js';
import { htmlReport } from '../../benchmarks/html.js';
import { table } from '../../benchmarks/report.js';
import { createProgress } from './progress.js';

export const BENCH_USAGE = `Usage: flame-actors bench [options]

Measures pools on a backend: nact dispatch to actors placed on 1 and N runners, query and call
latency (p50/p99), call throughput (with and without a diagnostics subscriber), cold calls; each
beside a baseline measured in the same run (local nact, a bare ws peer over the same link).

Options:
  --backend process|local|kubernetes   where runners run (default: $FLAME_BACKEND, else process);
                                       kubernetes runs from an app's pod, with its service account
  --runners N       runner count of the "N runners" rows (default 2)
  --duration S      measuring time in seconds, split over the measurements (default 20)
  --suite NAME      a suite to run (repeatable; default: pool): ${'{suites}'}, all
  --quick           smaller counts (a smoke check)
  --json            print only the rows, as a JSON array, on stdout
  --html FILE       also write a self-contained HTML report with charts to FILE
  --help            show this help
`;

export interface BenchArgs {
  backend: BackendName;
  runners: number;
  durationMs: number;
  suites: string[] | undefined;
  quick: boolean;
  json: boolean;
  html: string | undefined;
  help: boolean;
}

export function parseBenchArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): BenchArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: 'string' },
      runners: { type: 'string' },
      duration: { type: 'string' },
      suite: { type: 'string', multiple: true },
      quick: { type: 'boolean' },
      json: { type: 'boolean' },
      html: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  const backend = values.backend ?? (env.FLAME_BACKEND || 'process');
  if (!(BACKEND_NAMES as readonly string[]).includes(backend)) {
    throw new InvalidOptionError(`--backend must be one of ${BACKEND_NAMES.join(', ')} (got ${JSON.stringify(backend)})`, { option: 'backend', expected: BACKEND_NAMES.join(', ') });
  }
  const runners = Number(values.runners ?? 2);
  if (!Number.isInteger(runners) || runners < 1 || runners > 64) {
    throw new InvalidOptionError(`--runners must be a whole number from 1 to 64 (got ${JSON.stringify(values.runners)})`, { option: 'runners', expected: 'a whole number from 1 to 64' });
  }
  const duration = Number(values.duration ?? 20);
  if (!Number.isFinite(duration) || duration <= 0 || duration > 3600) {
    throw new InvalidOptionError(`--duration must be a number of seconds above 0, at most 3600 (got ${JSON.stringify(values.duration)})`, { option: 'duration', expected: 'seconds above 0, at most 3600' });
  }
  return {
    backend: backend as BackendName,
    runners,
    durationMs: duration * 1000,
    suites: values.suite?.flatMap((s) => s.split(',')),
    quick: values.quick ?? false,
    json: values.json ?? false,
    html: values.html,
    help: values.help ?? false,
  };
}

function backendFactory(name: BackendName): () => Backend {
  switch (name) {
    case 'process':
      return () => new ProcessBackend({ stdio: 'ignore' });
    case 'local':
      return () => new LocalBackend();
    case 'kubernetes':
      // Its defaults: the pod's service account, POD_NAME/POD_NAMESPACE, the app container's image.
      return () => new KubernetesBackend();
  }
}

export async function bench(argv: string[]): Promise<void> {
  const args = parseBenchArgs(argv);
  if (args.help) {
    process.stdout.write(BENCH_USAGE.replace('{suites}', suites.map((s) => s.name).join(', ')));
    return;
  }
  // A terminal that reports no size (some CI pseudo-terminals) gets lines: log-update fits its
  // output to the terminal's width and height, and would draw nothing.
  const terminal = process.stderr.isTTY && (process.stderr.columns ?? 0) > 0 && (process.stderr.rows ?? 0) > 0;
  const progress = createProgress(args.json ? 'silent' : terminal ? 'bar' : 'lines');
  const started = new Date();
  let result;
  try {
    result = await runBenchmarks({
      backendName: args.backend,
      backend: backendFactory(args.backend),
      runners: args.runners,
      durationMs: args.durationMs,
      quick: args.quick,
      ...(args.suites ? { suites: args.suites } : {}),
      progress: (label, fraction) => progress.update(label, fraction),
    });
  } finally {
    progress.done();
  }
  if (result.skipped.length > 0 && !args.json) {
    process.stderr.write(`  skipped on the ${args.backend} backend: ${result.skipped.join(', ')}\n`);
  }
  if (args.html) {
    writeFileSync(args.html, htmlReport(result.rows, result.charts, {
      title: `flame-actors bench: ${args.backend} backend`,
      facts: [
        `backend ${args.backend}, ${args.runners} runners, ${args.durationMs / 1000} s of measuring`,
        `Node ${process.version} on ${process.platform}/${process.arch}`,
        `started ${started.toISOString()}`,
      ],
    }));
    if (!args.json) process.stderr.write(`  report written to ${args.html}\n`);
  }
  if (args.json) {
    process.stdout.write(`${JSON.stringify(result.rows, null, 2)}\n`);
  } else {
    process.stdout.write(`\n${table(result.rows)}\n\n${JSON.stringify(result.rows)}\n`);
  }
}
