/**
 * `npm run demo`: watch a FLAME pool on local runner processes.
 *
 *  1. a cold pool (min 0) gets a burst of 60 calls and grows towards max (4 runners x 5 slots);
 *  2. the work done, idle runners drain and go away (idleShutdownAfter 1.5 s);
 *  3. a counter actor is placed on a fresh runner and queried with nact's own functions;
 *  4. the pool stops and a summary tells what happened.
 *
 * On a terminal the view is redrawn in place (log-update, ~10 Hz); elsewhere (CI, pipes, or
 * `--plain`) it prints plain progress lines. Every wait has a deadline; Ctrl-C stops cleanly.
 */
import { setMaxListeners } from 'node:events';
import { stripVTControlCharacters, styleText } from 'node:util';
import logUpdate from 'log-update';
import { dispatch, query, stop as stopActor, type Ref } from 'nact';
import { Pool, ProcessBackend, isFlameError, moduleRef, type RunnerStatus } from '../src/index.js';
import type { CounterMsg, CounterReply } from './actors.js';

const TOTAL = 60;
const MAX = 4;
const SLOTS = 5;
const IDLE_MS = 1500;
/** The whole demo's budget: calls and waits give up past it (it normally takes under 10 s). */
const BUDGET_MS = 25_000;
const ACTORS = new URL('./actors.js', import.meta.url);

const live = process.stdout.isTTY === true && !process.argv.includes('--plain');
const colors = live && !process.env.NO_COLOR;
type Style = Parameters<typeof styleText>[0];
const paint = (style: Style, text: string): string => (colors ? styleText(style, text) : text);

const t0 = performance.now();
const elapsed = (): string => `${((performance.now() - t0) / 1000).toFixed(2)}s`;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The work of one call, shipped as source: only its parameters, globals and `await import()`. */
const work = async (job: number, ms: number, rounds: number) => {
  const { createHash } = await import('node:crypto');
  let digest = `job-${job}`;
  for (let i = 0; i < rounds; i++) digest = createHash('sha256').update(digest).digest('hex');
  await new Promise((resolve) => setTimeout(resolve, ms));
  return { pid: process.pid, digest: digest.slice(0, 8) };
};

// ---------------------------------------------------------------- what the view shows

interface Row {
  status: RunnerStatus;
  done: number;
  goneAt?: number;
  reason?: string;
}

const rows = new Map<string, Row>();
const events: string[] = [];
let phase = 'starting';
let done = 0;
let failed = 0;
let queued = 0;
let actorLine = '';
let pool: Pool | undefined;

function event(text: string): void {
  const line = `${elapsed().padStart(6)}  ${text}`;
  if (live) {
    events.push(line);
    if (events.length > 6) events.shift();
  } else {
    console.log(line);
  }
}

/** Folds the pool's status into the rows; runners gone stay listed (dimmed) for 2 s. */
function refresh(): void {
  if (!pool) return;
  const status = pool.status();
  queued = status.queued;
  const now = performance.now();
  for (const r of status.runners) {
    const row = rows.get(r.id);
    if (row) row.status = r;
    else rows.set(r.id, { status: r, done: 0 });
  }
  const present = new Set(status.runners.map((r) => r.id));
  for (const [id, row] of rows) {
    if (!present.has(id) && row.goneAt === undefined) {
      row.goneAt = now;
      row.status = { ...row.status, state: 'stopped', load: 0 };
    }
    if (row.goneAt !== undefined && now - row.goneAt > 2000) rows.delete(id);
  }
}

function bar(filled: number, total: number, width: number, on = '█', off = '░'): string {
  const n = total === 0 ? 0 : Math.round((Math.min(filled, total) / total) * width);
  return on.repeat(n) + off.repeat(width - n);
}

const STATE_STYLE: Record<RunnerStatus['state'], Style> = { booting: 'yellow', ready: 'green', draining: 'magenta', lost: 'red', stopped: 'gray' };

/**
 * Makes the frame fit the terminal it is drawn in: lines cut to its width, and when it is too
 * short, the oldest events go first, then blank lines, then runner rows (summarised), so the
 * title and the progress always show and nothing scrolls (a frame taller than the screen makes
 * the redraw duplicate lines).
 */
function fit(head: string[], runnerLines: string[], tail: string[], events: string[]): string {
  const width = Math.max(20, (process.stdout.columns || 100) - 1);
  const height = Math.max(4, (process.stdout.rows || 40) - 1);
  const cut = (line: string) => {
    const plain = stripVTControlCharacters(line);
    return plain.length > width ? `${plain.slice(0, width - 1)}…` : line;
  };
  let shownEvents = events;
  let body = [...head, ...runnerLines, ...tail];
  const total = () => body.length + (shownEvents.length > 0 ? shownEvents.length + 1 : 0);
  while (total() > height && shownEvents.length > 0) shownEvents = shownEvents.slice(1);
  if (total() > height) body = body.filter((line, i) => line !== '' || i === 0);
  if (total() > height) {
    const room = Math.max(1, height - (body.length - runnerLines.length) - 1);
    const kept = runnerLines.slice(0, room);
    const more = runnerLines.length - kept.length;
    body = [...head.filter((l) => l !== ''), ...kept, ...(more > 0 ? [paint('gray', `  ... ${more} more runner(s)`)] : []), ...tail.filter((l) => l !== '')];
  }
  const lines = [...body, ...(shownEvents.length > 0 ? ['', ...shownEvents] : [])].slice(0, height);
  return lines.map(cut).join('\n');
}

function frame(): string {
  const lines = [
    `${paint('bold', 'flame-actors demo')}: pool "demo" on the ProcessBackend`,
    paint('gray', `min 0, max ${MAX} runners x ${SLOTS} slots, idle shutdown after ${IDLE_MS} ms`),
    '',
    `${paint('cyan', phase.padEnd(52))} ${elapsed().padStart(7)}`,
    `work     ${bar(done + failed, TOTAL, 30)} ${String(done + failed).padStart(2)}/${TOTAL}   queued ${String(queued).padStart(2)}${failed ? paint('red', `   failed ${failed}`) : ''}`,
    '',
  ];
  const runnerLines: string[] = [];
  if (rows.size === 0) runnerLines.push(paint('gray', '  (no runners)'));
  for (const row of rows.values()) {
    const r = row.status;
    const gone = row.goneAt !== undefined;
    const where = r.description ?? '';
    const text = `  ${r.id.padEnd(8)} ${r.state.padEnd(9)} ${bar(r.load, SLOTS, SLOTS, '■', '·')} ${r.load}/${SLOTS}  done ${String(row.done).padStart(2)}  ${gone ? `gone: ${row.reason ?? 'stopped'}` : where}`;
    runnerLines.push(gone ? paint('gray', text) : text.replace(r.state, paint(STATE_STYLE[r.state], r.state)));
  }
  const tail = actorLine ? ['', `actor    ${actorLine}`] : [];
  return fit(lines, runnerLines, tail, events.map((e) => paint('gray', e)));
}

let lastPlain = '';
let lastPlainAt = 0;
function tick(): void {
  refresh();
  if (live) {
    logUpdate(frame());
    return;
  }
  // Plain mode: a progress line when something changed, at most every 400 ms.
  const runners = [...rows.values()].filter((r) => r.goneAt === undefined).map((r) => `${r.status.id} ${r.status.state} ${r.status.load}/${SLOTS}`);
  const line = `work ${done + failed}/${TOTAL}, queued ${queued} | ${runners.join(', ') || 'no runners'}`;
  if (line !== lastPlain && performance.now() - lastPlainAt >= 400) {
    lastPlain = line;
    lastPlainAt = performance.now();
    console.log(`${elapsed().padStart(6)}  ${line}`);
  }
}

function setPhase(name: string): void {
  phase = name;
  if (!live) console.log(`${elapsed().padStart(6)}  == ${name}`);
  tick();
}

// ---------------------------------------------------------------- the run

const interrupt = new AbortController();
let interrupts = 0;
process.on('SIGINT', () => {
  if (++interrupts > 1) process.exit(130);
  event('interrupted: stopping the pool (Ctrl-C again to quit at once)');
  interrupt.abort(new Error('interrupted'));
});
const budget = AbortSignal.any([interrupt.signal, AbortSignal.timeout(BUDGET_MS)]);
setMaxListeners(TOTAL + 10, budget); // every call listens to it

/** Waits until `cond()` holds, the deadline passes or the budget runs out. */
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline || budget.aborted) return false;
    await sleep(50);
  }
  return true;
}

const bootTimes: number[] = [];
let firstResultMs: number | undefined;
let burstMs = 0;
let peakRunners = 0;
let peakQueued = 0;
let queries = 0;
let placed = false;
let exitCode = 0;
const timer = setInterval(() => {
  tick();
  peakRunners = Math.max(peakRunners, pool?.status().runners.length ?? 0);
  peakQueued = Math.max(peakQueued, queued);
}, 100);

try {
  pool = await Pool.start({
    name: 'demo',
    backend: new ProcessBackend({ stdio: 'ignore' }),
    min: 0,
    max: MAX,
    maxConcurrency: SLOTS,
    idleShutdownAfter: IDLE_MS,
    bootTimeout: 8000,
    shutdownTimeout: 3000,
  });
  pool.on('runnerUp', (runner, ms) => {
    bootTimes.push(ms);
    event(`+ ${runner.id} up in ${Math.round(ms)} ms (${runner.description})`);
  });
  pool.on('runnerDown', (runner, reason) => {
    const row = rows.get(runner.id);
    if (row) {
      row.reason = reason;
      row.goneAt ??= performance.now();
      row.status = { ...row.status, state: 'stopped', load: 0 };
    }
    event(`- ${runner.id} down: ${reason}`);
  });
  pool.on('bootFailed', (error) => event(`! boot failed: ${error.message}`));

  // 1. A burst on a cold pool: callers queue, the pool boots runners towards max.
  setPhase(`1/4 burst of ${TOTAL} calls on a cold pool`);
  const burstStart = performance.now();
  const calls = Array.from({ length: TOTAL }, (_, job) =>
    pool!.call(work, [job, 100 + ((job * 37) % 201), 2000], { timeout: 20_000, signal: budget }).then(
      (result) => {
        done++;
        firstResultMs ??= performance.now() - burstStart;
        for (const row of rows.values()) if (row.status.description?.startsWith(`pid ${result.pid} `)) row.done++;
      },
      (error: Error) => {
        failed++;
        if (failed <= 3) event(`! call ${job} failed: ${isFlameError(error) ? error.code : error.name}: ${error.message}`);
      },
    ),
  );
  await Promise.all(calls);
  burstMs = performance.now() - burstStart;
  event(`burst done: ${done} ok, ${failed} failed in ${(burstMs / 1000).toFixed(2)} s`);
  if (failed > 0) exitCode = 1;
  budget.throwIfAborted();

  // 2. Idle: runners above min (0) ask the parent, drain and stop.
  setPhase(`2/4 idle: runners stop after ${IDLE_MS} ms without work`);
  if (!(await until(() => pool!.status().runners.length === 0, IDLE_MS + 6000))) event('! runners still up after the idle deadline');
  if (live) await until(() => rows.size === 0, 2200); // let the view show them gone
  budget.throwIfAborted();

  // 3. An actor on a runner: placeChild boots one again; nact's dispatch/query drive it.
  setPhase('3/4 a counter actor placed on a runner');
  const counter = await pool.placeChild<CounterMsg>(moduleRef(ACTORS, 'counter'), [0], { timeout: 10_000, signal: budget });
  placed = true;
  actorLine = `placed at ${String(counter)}`;
  event(`placed a counter on ${String(counter).split('/')[0]}`);
  for (const by of [1, 10, 100]) {
    dispatch(counter, { type: 'inc', by });
    const reply = await query(counter, (sender: Ref<CounterReply>) => ({ type: 'get', sender }), 2000);
    queries++;
    actorLine = `inc by ${String(by).padEnd(3)} -> count ${String(reply.count).padEnd(3)} (answered by pid ${reply.pid} on ${reply.host})`;
    event(`query ${queries}: count ${reply.count}`);
    await sleep(400);
  }
  stopActor(counter);
  await until(() => pool!.status().runners.every((r) => r.load === 0), 3000);
  actorLine += '; stopped';
} catch (error) {
  exitCode = interrupt.signal.aborted ? 130 : 1;
  if (budget.aborted) event(interrupt.signal.aborted ? '! interrupted: skipping to the end' : `! the demo's ${BUDGET_MS} ms budget ran out`);
  else event(`! ${(error as Error).name}: ${(error as Error).message}`);
} finally {
  // 4. Stop: in-flight work drains (bounded by shutdownTimeout), every runner process ends.
  setPhase('4/4 stopping the pool');
  await pool?.stop();
  clearInterval(timer);
  setPhase('done');
  if (live) logUpdate.done();
}

const mean = bootTimes.length ? bootTimes.reduce((a, b) => a + b, 0) / bootTimes.length : 0;
const boots = bootTimes.length === 0
  ? '0 (stopped before any runner booted)'
  : `${bootTimes.length} (boots ${Math.round(Math.min(...bootTimes))}-${Math.round(Math.max(...bootTimes))} ms, mean ${Math.round(mean)})`;
const summary = [
  '',
  paint('bold', 'Summary'),
  `  calls run               ${done + failed} (${done} ok, ${failed} failed)`,
  ...(placed ? [`  actor                   placed, queried ${queries} times`] : []),
  `  runners booted          ${boots}`,
  `  peak                    ${peakRunners} runners, ${peakQueued} callers queued`,
  `  first result, cold pool ${firstResultMs === undefined ? 'none' : `${Math.round(firstResultMs)} ms (boot + call)`}`,
  `  burst                   ${burstMs === 0 ? 'not run' : `${(burstMs / 1000).toFixed(2)} s for ${TOTAL} calls`}`,
  `  total time              ${elapsed()}`,
];
console.log(summary.join('\n'));
process.exitCode = exitCode;
// Nothing should keep the process alive now; if something does, say so rather than hang.
setTimeout(() => {
  console.error('demo: something kept the process alive after the pool stopped');
  process.exit(1);
}, 5000).unref();
