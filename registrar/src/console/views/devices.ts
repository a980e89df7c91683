import { html, query, type SafeHtml } from '../html.ts';
import type { AuditVerdict } from '../../admin/audit.ts';
import {
  PLEDGE_STATES, type ApprovalRecord, type CertificateRecord, type PledgeEvent, type PledgeRecord, type StatusReport, type VoucherRecord,
} from '../../store/types.ts';
import type { DeviceFilter } from '../stats.ts';
import { csrfField, fmtTime, stateBadge } from './layout.ts';
import { REVOCATION_REASONS } from './certificates.ts';

const dev = (serial: string) => `/console/devices/${encodeURIComponent(serial)}`;

export function deviceTable(rows: readonly PledgeRecord[], f: DeviceFilter, shown: number): SafeHtml {
  return html`<div id="device-table" hx-get="/console/devices/table${query({ state: f.state, serial: f.serial, manufacturer: f.manufacturer })}" hx-trigger="every 3s" hx-swap="outerHTML">
<p class="muted">${rows.length} matching${rows.length > shown ? html`, showing the ${shown} most recently updated` : ''}</p>
<table class="devices"><thead><tr><th>Serial</th><th>State</th><th>Manufacturer</th><th>Format</th><th>Updated</th><th>Last error</th></tr></thead><tbody>
${rows.slice(0, shown).map((p) => html`<tr data-serial="${p.serial}"><td><a href="${dev(p.serial)}">${p.serial}</a></td><td>${stateBadge(p.state)}</td>
<td>${p.manufacturer ?? ''}</td><td>${p.voucherFormat ?? ''}</td><td>${fmtTime(p.updatedAt)}</td><td class="err">${p.lastError ?? ''}</td></tr>`)}
</tbody></table></div>`;
}

export function devicesPage(rows: readonly PledgeRecord[], f: DeviceFilter, manufacturers: readonly string[], shown: number): SafeHtml {
  return html`<h1>Devices</h1>
<form class="filters" method="get" action="/console/devices" hx-get="/console/devices/table" hx-target="#device-table" hx-swap="outerHTML"
  hx-trigger="input delay:300ms, change">
  <label>Serial <input type="search" name="serial" value="${f.serial ?? ''}" placeholder="contains…"></label>
  <label>State <select name="state"><option value="">any</option>${PLEDGE_STATES.map((s) => html`<option value="${s}"${s === f.state ? html` selected` : ''}>${s}</option>`)}</select></label>
  <label>Manufacturer <select name="manufacturer"><option value="">any</option>${manufacturers.map((m) => html`<option value="${m}"${m === f.manufacturer ? html` selected` : ''}>${m}</option>`)}</select></label>
  <button type="submit">Filter</button>
</form>
${deviceTable(rows, f, shown)}`;
}

const EVENT_LABEL: Record<string, string> = {
  'voucher-requested': 'Voucher request relayed to the MASA', 'voucher-issued': 'Voucher obtained and relayed', 'voucher-refused': 'Voucher refused',
  'masa-deferred': 'MASA unreachable, retrying (pledge told to retry)', 'approval-queued': 'Queued for operator approval', approved: 'Approved by an operator',
  denied: 'Denied by an operator', 'admission-refused': 'Refused by the admission policy', 'voucher-status': 'Voucher status telemetry',
  'enroll-status': 'Enroll status telemetry', enrolled: 'LDevID issued (enrollment)', reenrolled: 'LDevID re-issued (re-enrollment)',
  'certificate-revoked': 'Certificate revoked', 'device-revoked': 'Device revoked', 'audit-log': 'MASA audit log fetched',
};

function detailText(d: Record<string, unknown> | undefined): string {
  if (!d) return '';
  return Object.entries(d).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' · ').slice(0, 500);
}

function telemetry(label: string, s: StatusReport | undefined): SafeHtml {
  if (!s) return html`<tr><th>${label}</th><td class="muted">none received</td></tr>`;
  return html`<tr><th>${label}</th><td><span class="badge ${s.status ? 'ok' : 'bad'}">${s.status ? 'success' : 'failure'}</span> ${fmtTime(s.at)}
    ${s.reason ? html` — ${s.reason}` : ''}${s.authenticated ? '' : html` <span class="badge warn" title="not sent on a TLS session authenticated as this pledge">unauthenticated</span>`}</td></tr>`;
}

export interface DeviceDetail {
  pledge: PledgeRecord;
  events: PledgeEvent[];
  certificates: CertificateRecord[];
  approval?: ApprovalRecord;
  voucher?: VoucherRecord;
}

export function devicePage(d: DeviceDetail, csrf: string): SafeHtml {
  const p = d.pledge;
  return html`<h1>Device <code>${p.serial}</code> ${stateBadge(p.state)}</h1>
<div class="two">
<section><h2>Identity</h2><table class="kv"><tbody>
  <tr><th>Manufacturer</th><td>${p.manufacturer ?? ''}</td></tr>
  <tr><th>IDevID SHA-256</th><td><code class="wrap">${p.idevidFingerprint ?? ''}</code></td></tr>
  <tr><th>MASA</th><td><code>${p.masaUrl ?? ''}</code></td></tr>
  <tr><th>First seen</th><td>${fmtTime(p.createdAt)}</td></tr>
  <tr><th>Last error</th><td class="err">${p.lastError ?? ''}</td></tr>
  ${d.approval ? html`<tr><th>Approval</th><td>${d.approval.decision}${d.approval.decidedBy ? html` by ${d.approval.decidedBy} ${fmtTime(d.approval.decidedAt)}` : ''}</td></tr>` : ''}
</tbody></table></section>
<section><h2>Voucher and telemetry</h2><table class="kv"><tbody>
  ${d.voucher ? html`<tr><th>Voucher</th><td>${d.voucher.format.toUpperCase()}, ${d.voucher.voucher.length} bytes, ${fmtTime(d.voucher.issuedAt)}${d.voucher.nonce ? ' (nonced)' : ' (nonceless)'}</td></tr>
  <tr><th>Voucher request</th><td>RVR of ${d.voucher.rvr.length} bytes sent to <code>${d.voucher.masaUrl}</code></td></tr>`
    : html`<tr><th>Voucher</th><td class="muted">none obtained</td></tr>`}
  ${telemetry('Voucher status', p.voucherStatus)}
  ${telemetry('Enroll status', p.enrollStatus)}
</tbody></table></section>
</div>
<section><h2>Certificates</h2>
${d.certificates.length === 0 ? html`<p class="muted">No LDevID issued.</p>` : html`<table><thead><tr><th>Serial</th><th>Issued</th><th>Not after</th><th>Status</th></tr></thead><tbody>
${d.certificates.map((c) => html`<tr><td><code>${c.serialNumber}</code></td><td>${fmtTime(c.issuedAt)}</td><td>${fmtTime(c.notAfter)}</td>
<td>${c.revokedAt ? html`<span class="badge bad">revoked</span> ${c.revocationReason ?? ''} ${fmtTime(c.revokedAt)}` : c.supersededBy ? html`superseded by <code>${c.supersededBy}</code>` : html`<span class="badge ok">current</span>`}</td></tr>`)}
</tbody></table>`}
${p.state !== 'revoked' ? html`<form method="post" action="${dev(p.serial)}/revoke" class="inline" data-confirm="Revoke device ${p.serial}: all its certificates, and no further vouchers?">
  ${csrfField(csrf)}<label>Reason <select name="reason">${REVOCATION_REASONS.filter((r) => r !== 'superseded').map((r) => html`<option value="${r}"${r === 'cessationOfOperation' ? html` selected` : ''}>${r}</option>`)}</select></label>
  <button type="submit" class="danger">Revoke device</button></form>` : ''}
</section>
<section><h2>MASA audit log</h2>
<div id="auditlog">${d.voucher ? html`<form method="post" action="${dev(p.serial)}/auditlog" hx-post="${dev(p.serial)}/auditlog" hx-target="#auditlog">${csrfField(csrf)}<button type="submit">Fetch audit log from the MASA</button></form>`
    : html`<p class="muted">No voucher was obtained for this device, so there is nothing to audit.</p>`}</div>
</section>
<section><h2>Timeline</h2>
<ol class="timeline" id="timeline">${[...d.events].reverse().map((e) => html`<li class="ev-${e.type}">${fmtTime(e.at)} <strong>${EVENT_LABEL[e.type] ?? e.type}</strong> <span class="muted">${detailText(e.detail)}</span></li>`)}</ol>
</section>`;
}

export function auditLogFragment(v: AuditVerdict): SafeHtml {
  return html`${v.onlyOurDomain ? html`<p class="flash ok" role="status">Only this domain appears in the MASA's log for ${v.serial}.</p>`
    : html`<p class="flash error" role="alert" id="foreign-domain-warning"><strong>Warning:</strong> ${v.foreignEvents.length} event(s) name another domain — this device was (also) claimed elsewhere.</p>`}
<table><thead><tr><th>Date</th><th>Domain ID</th><th>Assertion</th><th>Nonce</th></tr></thead><tbody>
${v.log.events.map((e) => {
    const foreign = v.foreignEvents.includes(e);
    return html`<tr class="${foreign ? 'foreign' : ''}"><td>${e.date}</td><td><code class="wrap">${e.domainID}</code>${foreign ? html` <span class="badge bad">other domain</span>` : html` <span class="badge ok">ours</span>`}</td><td>${e.assertion}</td><td><code>${e.nonce ?? 'none'}</code></td></tr>`;
  })}
</tbody></table>`;
}
