/**
 * `--html FILE`: one self-contained page (inline CSS and SVG, no script, nothing fetched) with the
 * rows as a table and the charts: latency distributions (value per percentile, both axes log-scaled
 * as HDR plots are) and bars (e.g. throughput per runner count).
 */
import type { Row } from './report.js';
import type { Chart } from './suite.js';

export interface HtmlMeta {
  title: string;
  /** Lines under the title: backend, runners, duration, Node version, date. */
  facts: string[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const W = 640;
const H = 300;
const PAD = { left: 85, right: 20, top: 20, bottom: 50 };

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function fmt(v: number): string {
  return v.toLocaleString('en-US', { maximumFractionDigits: v < 10 ? 2 : 0 });
}

/** x position of a percentile: "nines" scale, so 99 and 99.9 are as far apart as 90 and 99. */
function nines(p: number): number {
  return -Math.log10(Math.max(1e-4, 1 - p / 100));
}

function latencySvg(chart: Extract<Chart, { kind: 'latency' }>): string {
  const all = chart.series.flatMap((s) => s.points);
  const maxX = Math.max(...all.map(([p]) => nines(p)), 1);
  // Logarithmic values: the tail (p99.9, max) is often 100x the median, which a linear axis would flatten.
  const lo = Math.floor(Math.log10(Math.max(1, Math.min(...all.map(([, v]) => v)))));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(1, ...all.map(([, v]) => v)))));
  const x = (p: number) => PAD.left + (nines(p) / maxX) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - ((Math.log10(Math.max(1, v)) - lo) / (hi - lo)) * (H - PAD.top - PAD.bottom);
  const ticks = [0, 50, 90, 99, 99.9, 99.99].filter((p) => nines(p) <= maxX + 1e-9);
  const decades = Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i));
  const parts = [
    ...ticks.map((p) => `<line x1="${x(p)}" x2="${x(p)}" y1="${PAD.top}" y2="${H - PAD.bottom}" class="grid"/><text x="${x(p)}" y="${H - PAD.bottom + 16}" text-anchor="middle">p${p}</text>`),
    ...decades.map((v) => `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(v)}" y2="${y(v)}" class="grid"/><text x="${PAD.left - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`),
    `<text x="${W / 2}" y="${H - 8}" text-anchor="middle">percentile</text>`,
    `<text x="14" y="${H / 2}" transform="rotate(-90 14 ${H / 2})" text-anchor="middle">${esc(chart.unit)} (log scale)</text>`,
    ...chart.series.map((s, i) => {
      const d = s.points.map(([p, v], k) => `${k ? 'L' : 'M'}${x(p).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
      const color = COLORS[i % COLORS.length];
      return `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>` +
        `<text x="${PAD.left + 10}" y="${PAD.top + 14 + i * 16}" fill="${color}">${esc(s.name)}</text>`;
    }),
  ];
  return svg(parts);
}

function barsSvg(chart: Extract<Chart, { kind: 'bars' }>): string {
  const maxY = Math.max(...chart.bars.map((b) => b.value), 1);
  const band = (W - PAD.left - PAD.right) / Math.max(1, chart.bars.length);
  const y = (v: number) => H - PAD.bottom - (v / maxY) * (H - PAD.top - PAD.bottom);
  const parts = [
    ...[0, 0.5, 1].map((f) => `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(f * maxY)}" y2="${y(f * maxY)}" class="grid"/><text x="${PAD.left - 6}" y="${y(f * maxY) + 4}" text-anchor="end">${fmt(f * maxY)}</text>`),
    `<text x="14" y="${H / 2}" transform="rotate(-90 14 ${H / 2})" text-anchor="middle">${esc(chart.unit)}</text>`,
    ...chart.bars.map((b, i) => {
      const x = PAD.left + i * band + band * 0.15;
      return `<rect x="${x}" y="${y(b.value)}" width="${band * 0.7}" height="${H - PAD.bottom - y(b.value)}" fill="${COLORS[i % COLORS.length]}"/>` +
        `<text x="${x + band * 0.35}" y="${y(b.value) - 4}" text-anchor="middle">${fmt(b.value)}</text>` +
        `<text x="${x + band * 0.35}" y="${H - PAD.bottom + 16}" text-anchor="middle">${esc(b.label)}</text>`;
    }),
  ];
  return svg(parts);
}

function svg(parts: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img">${parts.join('')}</svg>`;
}

export function htmlReport(rows: Row[], charts: Chart[], meta: HtmlMeta): string {
  const cell = (v: string | number | undefined, num = false) => `<td${num ? ' class="num"' : ''}>${v === undefined ? '' : esc(String(v))}</td>`;
  const body = rows.map((r) => `<tr>${cell(r.name)}${cell(fmt(r.value), true)}${cell(r.unit)}${cell(r.baseline)}${cell(r.ratio?.toFixed(2), true)}` +
    `${cell(r.target)}<td class="${r.met === false ? 'miss' : ''}">${r.met === undefined ? '' : r.met ? 'yes' : 'NO'}</td>${cell(r.detail)}</tr>`).join('\n');
  const figures = charts.map((c) => `<figure><figcaption>${esc(c.title)}</figcaption>${c.kind === 'latency' ? latencySvg(c) : barsSvg(c)}</figure>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(meta.title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.miss { color: #b00; font-weight: bold; }
figure { display: inline-block; margin: 1em 2em 1em 0; }
figcaption { font-weight: bold; margin-bottom: .5em; }
svg text { font-size: 11px; fill: #333; }
svg .grid { stroke: #e5e5e5; }
</style></head><body>
<h1>${esc(meta.title)}</h1>
<ul>${meta.facts.map((f) => `<li>${esc(f)}</li>`).join('')}</ul>
<p>Every ratio compares two rows measured in the same run; compare ratios across runs, not absolute figures.</p>
<table><thead><tr><th>benchmark</th><th>value</th><th>unit</th><th>baseline</th><th>ratio</th><th>target</th><th>met</th><th>what</th></tr></thead>
<tbody>
${body}
</tbody></table>
${figures}
</body></html>
`;
}
