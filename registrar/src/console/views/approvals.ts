import { html, type SafeHtml } from '../html.ts';
import type { ApprovalRecord } from '../../store/types.ts';
import { csrfField, fmtTime } from './layout.ts';

/**
 * Pending approvals as one form: tick one or many, then approve or deny. The table refreshes
 * itself only while nothing is ticked (console.js pauses the poll), so a refresh never drops a
 * half-made selection.
 */
export function approvalsBody(pending: readonly ApprovalRecord[], decided: readonly ApprovalRecord[], csrf: string): SafeHtml {
  return html`<div id="approvals-live">
<form method="post" action="/console/approvals" id="approvals-form">
${csrfField(csrf)}
<h2>Waiting (${pending.length})</h2>
${pending.length === 0 ? html`<p class="muted" id="no-pending">No pledge is waiting for approval.</p>` : html`
<table id="pending"><thead><tr><th><input type="checkbox" id="select-all" aria-label="select all"></th><th>Serial</th><th>Manufacturer</th><th>Asked</th></tr></thead><tbody>
${pending.map((a) => html`<tr data-serial="${a.serial}"><td><input type="checkbox" name="serial" value="${a.serial}" aria-label="select ${a.serial}"></td>
<td><a href="/console/devices/${encodeURIComponent(a.serial)}">${a.serial}</a></td><td>${a.manufacturer ?? ''}</td><td>${fmtTime(a.requestedAt)}</td></tr>`)}
</tbody></table>
<p class="actions"><button type="submit" name="decision" value="approved">Approve selected</button>
<button type="submit" name="decision" value="denied" class="danger">Deny selected</button></p>`}
</form>
<h2>Decided</h2>
${decided.length === 0 ? html`<p class="muted">No decisions yet.</p>` : html`<table id="decided"><thead><tr><th>Serial</th><th>Decision</th><th>By</th><th>At</th></tr></thead><tbody>
${decided.map((a) => html`<tr data-serial="${a.serial}"><td><a href="/console/devices/${encodeURIComponent(a.serial)}">${a.serial}</a></td><td><span class="badge ${a.decision === 'approved' ? 'ok' : 'bad'}">${a.decision}</span></td><td>${a.decidedBy ?? ''}</td><td>${fmtTime(a.decidedAt)}</td></tr>`)}
</tbody></table>`}
<div hx-get="/console/approvals/live" hx-trigger="every 3s" data-pause-when-selected="#approvals-form" hx-target="#approvals-live" hx-swap="outerHTML" class="poll"></div>
</div>`;
}

export function approvalsPage(pending: readonly ApprovalRecord[], decided: readonly ApprovalRecord[], csrf: string, mode: string): SafeHtml {
  return html`<h1>Approvals</h1>
${mode !== 'approve' ? html`<p class="flash warn">Admission mode is <strong>${mode}</strong>: pledges are not queued for approval. Approving here pre-approves a serial for when the mode is <em>approve</em>.</p>` : ''}
${approvalsBody(pending, decided, csrf)}`;
}
