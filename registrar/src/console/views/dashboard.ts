import { barChart, type Bucket } from '../chart.ts';
import { html, type SafeHtml } from '../html.ts';
import type { MasaStatus } from '../masa-probe.ts';
import { PLEDGE_STATES, type PledgeState } from '../../store/types.ts';
import { fmtTime, stateBadge } from './layout.ts';

export interface DashboardData {
  at: Date;
  perMinute: Bucket[];
  counts: Record<PledgeState, number>;
  total: number;
  pendingApprovals: number;
  failures: Array<{ reason: string; count: number; latest: string; example: string }>;
  masas: MasaStatus[];
  truncated: boolean;
  policyMode: string;
}

/** The live part of the dashboard; re-fetched by htmx every few seconds. */
export function dashboardBody(d: DashboardData): SafeHtml {
  const lastMin = d.perMinute.at(-1)?.count ?? 0;
  return html`<div id="dashboard-live" hx-get="/console/dashboard/live" hx-trigger="every 2s" hx-swap="outerHTML">
<p class="muted">Updated ${fmtTime(d.at.toISOString())} · admission mode <strong>${d.policyMode}</strong>${d.truncated ? html` · <strong>only the newest pledges are counted</strong>` : ''}</p>
<section class="cards">
  <div class="card"><span class="num" id="count-total">${d.total}</span><span>pledges</span></div>
  <div class="card"><span class="num" id="count-enrolled">${d.counts.enrolled}</span><span>enrolled</span></div>
  <div class="card"><span class="num" id="count-this-minute">${lastMin}</span><span>onboarded this minute</span></div>
  <div class="card ${d.pendingApprovals > 0 ? 'attention' : ''}"><a href="/console/approvals"><span class="num" id="count-pending">${d.pendingApprovals}</span><span>awaiting approval</span></a></div>
  <div class="card ${d.counts.failed > 0 ? 'bad' : ''}"><span class="num" id="count-failed">${d.counts.failed}</span><span>failed</span></div>
</section>
<section>
  <h2>Onboardings per minute (last 30 minutes, UTC)</h2>
  ${barChart(d.perMinute, { label: 'Onboardings per minute' })}
</section>
<div class="two">
<section>
  <h2>Pledges by state</h2>
  <table class="states"><tbody>
  ${PLEDGE_STATES.map((s) => html`<tr><td>${stateBadge(s)}</td><td class="n" data-state="${s}">${d.counts[s]}</td>
    <td><meter min="0" max="${Math.max(1, d.total)}" value="${d.counts[s]}"></meter></td>
    <td><a href="/console/devices?state=${s}">list</a></td></tr>`)}
  </tbody></table>
</section>
<section>
  <h2>MASA reachability</h2>
  ${d.masas.length === 0 ? html`<p class="muted">No MASA known yet (none configured, no pledge has asked).</p>` : html`
  <table><thead><tr><th>MASA</th><th>State</th><th>Last voucher</th><th>Deferred</th></tr></thead><tbody>
  ${d.masas.map((m) => html`<tr><td><code>${m.url}</code>${m.manufacturer ? html`<br><span class="muted">${m.manufacturer}</span>` : ''}</td>
    <td><span class="badge masa-${m.state}" title="${m.detail}">${m.state}</span>${m.latencyMs !== undefined ? html` <span class="muted">${m.latencyMs} ms</span>` : ''}<br><span class="muted">${m.detail}</span></td>
    <td>${fmtTime(m.lastVoucherAt)}</td><td class="n">${m.deferred}</td></tr>`)}
  </tbody></table>`}
</section>
</div>
<section>
  <h2>Recent failures by reason (last hour)</h2>
  ${d.failures.length === 0 ? html`<p class="muted">No failures in the last hour.</p>` : html`
  <table id="failures"><thead><tr><th>Count</th><th>Reason</th><th>Latest</th></tr></thead><tbody>
  ${d.failures.map((f) => html`<tr><td class="n">${f.count}</td><td>${f.reason}</td><td>${fmtTime(f.latest)} <a href="/console/devices/${encodeURIComponent(f.example)}">${f.example}</a></td></tr>`)}
  </tbody></table>`}
</section>
</div>`;
}

export function dashboardPage(d: DashboardData): SafeHtml {
  return html`<h1>Dashboard</h1>${dashboardBody(d)}`;
}
