/**
 * Server-rendered SVG bar chart (no client-side charting library, nothing for the CSP to allow):
 * one bar per bucket, a y-axis maximum rounded up to a readable number, minute labels every
 * few bars, and a <title> per bar for hover text. Only presentation attributes, no style attributes.
 */
import { html, type SafeHtml } from './html.ts';

export interface Bucket { start: Date; count: number }

function niceMax(n: number): number {
  if (n <= 5) return 5;
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

const hhmm = (d: Date): string => d.toISOString().slice(11, 16);

export function barChart(buckets: readonly Bucket[], o: { label: string; width?: number; height?: number }): SafeHtml {
  const W = o.width ?? 720;
  const H = o.height ?? 200;
  const left = 40, bottom = 24, top = 10, right = 8;
  const plotW = W - left - right, plotH = H - top - bottom;
  const max = niceMax(Math.max(0, ...buckets.map((b) => b.count)));
  const bw = buckets.length ? plotW / buckets.length : plotW;
  const total = buckets.reduce((s, b) => s + b.count, 0);
  const ticks = [0, max / 2, max];
  return html`<svg class="chart" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${o.label}: ${total} in the last ${buckets.length} minutes" data-total="${total}">
  ${ticks.map((t) => {
    const y = top + plotH - (t / max) * plotH;
    return html`<line x1="${left}" x2="${W - right}" y1="${y}" y2="${y}" class="grid"/><text x="${left - 6}" y="${y + 4}" text-anchor="end" class="axis">${Number.isInteger(t) ? t : t.toFixed(1)}</text>`;
  })}
  ${buckets.map((b, i) => {
    const h = (b.count / max) * plotH;
    const x = left + i * bw;
    return html`<rect x="${(x + 1).toFixed(1)}" y="${(top + plotH - h).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${h.toFixed(1)}" class="bar"><title>${hhmm(b.start)} UTC: ${b.count}</title></rect>${
      i % 5 === 0 ? html`<text x="${(x + bw / 2).toFixed(1)}" y="${H - 6}" text-anchor="middle" class="axis">${hhmm(b.start)}</text>` : ''}`;
  })}
</svg>`;
}
