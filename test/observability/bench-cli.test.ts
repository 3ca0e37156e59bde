import { expect } from 'chai';
import { parseBenchArgs } from '../../src/cli/bench.js';
import { selectSuites } from '../../benchmarks/run.js';
import { htmlReport } from '../../benchmarks/html.js';
import { compare, table, type Row } from '../../benchmarks/report.js';

function refusal(run: () => unknown): { code?: string; option?: string; message: string } {
  try {
    run();
  } catch (error) {
    return error as { code?: string; option?: string; message: string };
  }
  throw new Error('expected a refusal');
}

describe('flame-actors bench: arguments, suites and reports', function () {
  it('defaults to the process backend (or FLAME_BACKEND), 2 runners, 20 s, the default suites', () => {
    expect(parseBenchArgs([], {})).to.deep.include({ backend: 'process', runners: 2, durationMs: 20_000, suites: undefined, json: false, html: undefined });
    expect(parseBenchArgs([], { FLAME_BACKEND: 'kubernetes' }).backend).to.equal('kubernetes');
    expect(parseBenchArgs(['--backend', 'local', '--runners', '4', '--duration', '2.5', '--suite', 'pool,transport', '--json', '--html', 'r.html'], {}))
      .to.deep.include({ backend: 'local', runners: 4, durationMs: 2500, suites: ['pool', 'transport'], json: true, html: 'r.html' });
  });

  it('refuses a bad backend, runner count or duration with an InvalidOptionError naming the option', () => {
    for (const [args, option] of [[['--backend', 'docker'], 'backend'], [['--runners', '0'], 'runners'], [['--runners', '2.5'], 'runners'], [['--duration=-1'], 'duration'], [['--duration', 'soon'], 'duration']] as const) {
      const error = refusal(() => parseBenchArgs([...args], {}));
      expect(error.code, args.join(' ')).to.equal('FLAME_ERR_INVALID_OPTION');
      expect(error.option).to.equal(option);
    }
  });

  it('runs the default suite, every suite that fits the backend with "all", and names an unknown suite', () => {
    expect(selectSuites(undefined, 'process').run.map((s) => s.name)).to.deep.equal(['pool']);
    const all = selectSuites(['all'], 'kubernetes');
    expect(all.run.map((s) => s.name)).to.include('pool');
    expect(all.skipped).to.include('transport');
    const error = refusal(() => selectSuites(['nope'], 'process'));
    expect(error.option).to.equal('suite');
    expect(error.message).to.include('nope');
  });

  it('compares rows with their same-run baselines and prints them', () => {
    const rows: Row[] = [{ name: 'a', value: 90, unit: 'ops/s' }, { name: 'b', value: 100, unit: 'ops/s' }];
    compare(rows, [{ name: 'a', baseline: 'b', target: { op: '>=', limit: 0.8 } }]);
    expect(rows[0]).to.include({ baseline: 'b', ratio: 0.9, met: true });
    expect(table(rows)).to.match(/^a\s+90\s+ops\/s\s+.*b\s+0\.90\s+ratio >= 0\.8\s+yes/m);
  });

  it('keeps the ratio a suite measured in pairs (the median of the pairs), and judges the target on it', () => {
    const rows: Row[] = [{ name: 'a', value: 90, unit: 'ops/s', ratio: 0.78 }, { name: 'b', value: 100, unit: 'ops/s' }];
    compare(rows, [{ name: 'a', baseline: 'b', target: { op: '>=', limit: 0.8 } }]);
    expect(rows[0]).to.include({ baseline: 'b', ratio: 0.78, met: false });
  });

  it('writes an HTML report that escapes what it shows and fetches nothing', () => {
    const html = htmlReport([{ name: '<b>x</b>', value: 1, unit: 'us' }], [
      { kind: 'latency', title: 'lat', unit: 'us', series: [{ name: 's', points: [[0, 10], [50, 20], [99, 300], [100, 9000]] }] },
      { kind: 'bars', title: 'per runner count', unit: 'msgs/s', bars: [{ label: '1 runner', value: 5 }, { label: '2 runners', value: 9 }] },
    ], { title: 'T', facts: ['backend process'] });
    expect(html).to.include('&#60;b&#62;x&#60;/b&#62;');
    expect(html).not.to.include('<b>x</b>');
    expect(html.match(/<svg /g)).to.have.length(2);
    expect(html).not.to.match(/<script|<link|src=|href=/);
  });
});
