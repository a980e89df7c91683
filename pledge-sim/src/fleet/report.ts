/** Human summary table and JSON form of a fleet report. */
import { PHASES, type FleetReport } from './fleet.ts';

const ms = (v: number): string => (v >= 100 ? v.toFixed(0) : v.toFixed(1));

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

export function formatSummary(r: FleetReport): string {
  const lines: string[] = [];
  lines.push(`pledges: ${r.count}  concurrency: ${r.concurrency}  format: ${r.format}`);
  lines.push(`onboarded: ${r.onboarded}  failed: ${r.failed}  duration: ${(r.durationMs / 1000).toFixed(2)} s  throughput: ${r.throughput.toFixed(1)} onboardings/s`);
  const formats = Object.entries(r.byFormat).map(([f, c]) => `${f} ${c.onboarded}/${c.onboarded + c.failed}`).join('  ');
  if (formats) lines.push(`by format: ${formats}`);
  lines.push('');
  lines.push(table([
    ['phase (ms)', 'p50', 'p90', 'p99', 'max', 'n'],
    ...PHASES.map((p) => { const s = r.latency[p]; return [p, ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max), String(s.count)]; }),
  ]));
  const reasons = Object.entries(r.failuresByReason).sort((a, b) => b[1] - a[1]);
  if (reasons.length) {
    lines.push('');
    lines.push(table([['failure reason', 'count'], ...reasons.map(([k, v]) => [k, String(v)])]));
  }
  return lines.join('\n');
}

/** JSON output: the report without the per-pledge certificates (kept small), outcomes optional. */
export function reportJson(r: FleetReport, opts: { outcomes?: boolean } = {}): unknown {
  const { outcomes, ...rest } = r;
  return { ...rest, ...(opts.outcomes ? { outcomes: outcomes.map(({ ldevidPem: _pem, ...o }) => o) } : {}) };
}
