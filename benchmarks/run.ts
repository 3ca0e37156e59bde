/**
 * `npm run bench` prints a table; `npm run bench -- --json` prints one JSON array of rows
 * `{ name, value, unit, baseline?, ratio?, target?, met? }`. Every compared row has its
 * baseline measured in the same run. `--quick` runs smaller counts (for a smoke check).
 */
import { clusterBenchmarks, clusterComparisons } from './cluster.bench.js';
import { emulatorBenchmarks, emulatorComparisons } from './emulator.bench.js';
import { flameBenchmarks, flameComparisons } from './flame.bench.js';
import { compare, table, type Row } from './report.js';

const args = new Set(process.argv.slice(2));
const json = args.has('--json');
const quick = args.has('--quick');
const progress = (s: string) => {
  if (!json) process.stderr.write(`  ${s}\n`);
};

const rows: Row[] = [];
rows.push(...(await clusterBenchmarks(
  quick
    ? { messages: 30_000, roundTrips: 2_000, pipelined: 10_000, repetitions: 1 }
    : { messages: 300_000, roundTrips: 10_000, pipelined: 100_000, repetitions: 3 },
  progress,
)));
rows.push(...(await flameBenchmarks(
  quick ? { coldSamples: 3, warmCalls: 2_000, throughputCalls: 10_000 } : { coldSamples: 7, warmCalls: 10_000, throughputCalls: 50_000 },
  progress,
)));
rows.push(...(await emulatorBenchmarks(quick ? { podStartSamples: 3, loadPods: 100 } : { podStartSamples: 7, loadPods: 100 }, progress)));
compare(rows, [...clusterComparisons, ...flameComparisons, ...emulatorComparisons]);
if (json) {
  process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
} else {
  process.stdout.write(`\n${table(rows)}\n\n${JSON.stringify(rows)}\n`);
}
process.exit(0);
