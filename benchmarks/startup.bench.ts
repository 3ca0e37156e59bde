/**
 * What the library costs an app and its runners at start-up, each beside its baseline measured
 * in the same run, interleaved (a sample of one, then one of the other):
 * - `import-time`: `import 'flame-actors'` (the package's entry point) in a fresh Node process, beside
 *   `import-time-baseline`, the libraries it cannot do without (ws, msgpackr, nact) alone;
 * - `app-as-runner-cold-call`: a call on an empty pool whose runners are the app's own entry
 *   point (FLAME's usual shape, and how every Kubernetes runner pod starts: it imports the whole
 *   library), beside `cold-call` with flame-actors' lean runner entry point;
 * - `app-as-runner-idle-rss`: the memory of such a runner sitting idle, beside `idle-runner-rss`.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ProcessBackend } from '../src/backends/process/backend.js';
import { coldCall, idleRunnerRss } from './flame.bench.js';
import { median, round, type Comparison, type Row } from './report.js';
import type { BenchContext } from './suite.js';

/** What `import 'flame-actors'` loads: the package's entry point, as an app resolves it (the bundle the build makes). */
const INDEX = fileURLToPath(import.meta.resolve('flame-actors'));
/** The app-as-runner example: an HTTP app that boots as a runner when a pool starts it. */
const APP = fileURLToPath(new URL('../examples/app-as-runner.js', import.meta.url));

/** Milliseconds a fresh Node process takes to run `imports` (measured inside it). */
function importTime(imports: string): Promise<number> {
  const script = `const t = performance.now(); ${imports}; process.stdout.write(String(performance.now() - t));`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(Number(stdout));
    });
  });
}

export async function startupBenchmarks(ctx: BenchContext): Promise<Row[]> {
  const samples = ctx.quick ? 3 : 9;
  const lean: BenchContext = { ...ctx, backend: () => new ProcessBackend({ stdio: 'ignore' }) };
  const app: BenchContext = { ...ctx, backend: () => new ProcessBackend({ command: [process.execPath, APP], stdio: 'ignore' }) };
  const runs: Record<string, number[]> = {
    'import-time': [], 'import-time-baseline': [], 'cold-call': [], 'app-as-runner-cold-call': [], 'idle-runner-rss': [], 'app-as-runner-idle-rss': [],
  };
  for (let i = 0; i < samples; i++) {
    ctx.progress(`import time ${i + 1}/${samples}`, i / samples / 3);
    const pair: [string, () => Promise<number>][] = [
      ['import-time', () => importTime(`await import(${JSON.stringify(INDEX)})`)],
      ['import-time-baseline', () => importTime("await Promise.all([import('ws'), import('msgpackr'), import('nact')])")],
    ];
    // Alternating which goes first, so drift favours neither.
    for (const [name, measure] of i % 2 ? pair.reverse() : pair) runs[name]!.push(await measure());
  }
  for (let i = 0; i < samples; i++) {
    ctx.progress(`cold calls ${i + 1}/${samples}`, (1 + i / samples) / 3);
    const pair: [string, () => Promise<number>][] = [['cold-call', () => coldCall(lean, 1)], ['app-as-runner-cold-call', () => coldCall(app, 1)]];
    for (const [name, measure] of i % 2 ? pair.reverse() : pair) runs[name]!.push(await measure());
  }
  const rssSamples = ctx.quick ? 1 : 3;
  for (let i = 0; i < rssSamples; i++) {
    ctx.progress(`idle runner memory ${i + 1}/${rssSamples}`, (2 + i / rssSamples) / 3);
    runs['idle-runner-rss']!.push(await idleRunnerRss(lean));
    runs['app-as-runner-idle-rss']!.push(await idleRunnerRss(app));
  }
  const m = (name: string) => round(median(runs[name]!));
  return [
    { name: 'import-time', value: m('import-time'), unit: 'ms', detail: "import 'flame-actors' in a fresh process" },
    { name: 'import-time-baseline', value: m('import-time-baseline'), unit: 'ms', detail: 'ws + msgpackr + nact alone' },
    { name: 'app-as-runner-cold-call', value: m('app-as-runner-cold-call'), unit: 'ms', detail: "runners are the app's entry point (examples/app-as-runner)" },
    { name: 'cold-call', value: m('cold-call'), unit: 'ms', detail: "flame-actors' runner entry point" },
    { name: 'app-as-runner-idle-rss', value: m('app-as-runner-idle-rss'), unit: 'MB', detail: "an idle runner that is the app's entry point" },
    { name: 'idle-runner-rss', value: m('idle-runner-rss'), unit: 'MB' },
  ];
}

export const startupComparisons: Comparison[] = [
  { name: 'import-time', baseline: 'import-time-baseline', target: { op: '<=', limit: 1.5 } },
  { name: 'app-as-runner-cold-call', baseline: 'cold-call', target: { op: '<=', limit: 1.15 } },
  { name: 'app-as-runner-idle-rss', baseline: 'idle-runner-rss', target: { op: '<=', limit: 1.1 } },
];
