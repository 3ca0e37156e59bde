/**
 * `flame-actors status [URL] [--json]`: what the pools of a running app are doing, read from the
 * endpoint the app opened with `serveStatus()` (default http://127.0.0.1:9465/status).
 */
import { parseArgs } from 'node:util';
import { InvalidOptionError } from '../errors.js';
import { STATUS_DEFAULTS, type StatusReport } from '../observability/status.js';

export const STATUS_USAGE = `Usage: flame-actors status [URL] [--json]

Prints the pools of a running app: runners by state, load, queued callers. The app opts in with
serveStatus() (see README); URL defaults to http://${STATUS_DEFAULTS.host}:${STATUS_DEFAULTS.port}${STATUS_DEFAULTS.path}.

Options:
  --json    print the endpoint's JSON as it is
  --help    show this help
`;

/** The report as a few lines of text per pool. */
export function formatStatus(report: StatusReport): string {
  const lines = [`process ${report.pid}, up ${report.uptimeSeconds} s, ${report.pools.length} pool(s)`];
  for (const p of report.pools) {
    const byState = new Map<string, number>();
    for (const r of p.runners) byState.set(r.state, (byState.get(r.state) ?? 0) + 1);
    const load = p.runners.reduce((sum, r) => sum + r.load, 0);
    const states = [...byState].map(([s, n]) => `${s} ${n}`).join(', ') || 'none';
    lines.push('', `pool ${p.pool} (${p.state}) on ${p.node}`,
      `  runners ${p.runners.length} of max ${p.max} (min ${p.min}): ${states}; load ${load}/${p.runners.length * p.maxConcurrency}; queued ${p.queued}`);
    for (const r of p.runners) {
      lines.push(`  ${r.id.padEnd(20)} ${r.state.padEnd(9)} load ${String(r.load).padStart(4)}  ${r.node ?? '-'}  ${r.description ?? ''}`.trimEnd());
    }
  }
  return lines.join('\n');
}

export async function status(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: { json: { type: 'boolean' }, help: { type: 'boolean' } }, allowPositionals: true, strict: true });
  if (values.help) {
    process.stdout.write(STATUS_USAGE);
    return;
  }
  const url = positionals[0] ?? `http://${STATUS_DEFAULTS.host}:${STATUS_DEFAULTS.port}${STATUS_DEFAULTS.path}`;
  if (!/^https?:\/\//.test(url)) throw new InvalidOptionError(`status: the URL must start with http:// or https:// (got ${JSON.stringify(url)})`, { option: 'url', expected: 'an http(s) URL' });
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new InvalidOptionError(`status: ${url} answered ${response.status}; is it an endpoint opened with serveStatus()?`, { option: 'url', expected: 'a serveStatus() endpoint' });
  const report = (await response.json()) as StatusReport;
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatStatus(report)}\n`);
}
