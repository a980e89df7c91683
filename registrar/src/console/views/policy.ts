import { html, type SafeHtml } from '../html.ts';
import type { EffectiveMode } from '../../authority/admission.ts';
import type { PolicyChangeRecord } from '../../store/types.ts';
import { csrfField, fmtTime } from './layout.ts';

export interface PolicyView {
  mode: EffectiveMode;
  configAllowlist: readonly string[];
  adminAllowlist: readonly string[];
  refusalStatus?: number;
  changes: readonly PolicyChangeRecord[];
}

const MODE_TEXT: Record<string, string> = {
  accept: 'every pledge of a trusted manufacturer gets a voucher',
  allowlist: 'only serials matching the allowlist get a voucher; others are refused',
  approve: 'allow-listed serials pass; every other pledge waits in the approval queue until an operator decides',
};
const MODES = ['accept', 'allowlist', 'approve'] as const;

function modeSection(m: EffectiveMode, csrf: string, refusalStatus?: number): SafeHtml {
  return html`<section><h2>Mode</h2>
<p>Mode <strong id="policy-mode">${m.mode}</strong>: ${MODE_TEXT[m.mode] ?? ''}.${refusalStatus ? html` Refused pledges get HTTP ${refusalStatus}.` : ''}</p>
<p class="muted" id="policy-mode-source">${m.source === 'operator'
    ? html`Set by ${m.setBy ?? 'an operator'} at ${fmtTime(m.setAt)}; registrar.yaml says <code>${m.configured}</code>.`
    : html`From registrar.yaml (<code>policy.mode</code>).`}
 The mode is kept in the registrar store: every registrar process sharing it applies the change within a second.</p>
<form method="post" action="/console/policy/mode" id="mode-form" data-confirm="Change the admission mode for every registrar process on this store?">
  ${csrfField(csrf)}
  <fieldset class="modes"><legend>Change the mode</legend>
  ${MODES.map((k) => html`<label><input type="radio" name="mode" value="${k}"${m.mode === k ? html` checked` : ''}> <strong>${k}</strong> — ${MODE_TEXT[k]}</label>`)}
  ${m.source === 'operator' ? html`<label><input type="radio" name="mode" value="config"> back to registrar.yaml (<code>${m.configured}</code>)</label>` : ''}
  </fieldset>
  <button type="submit">Apply</button>
</form>
<p class="muted">Switching from <code>approve</code> leaves queued pledges in the queue: under <code>accept</code> they pass on their next retry; under <code>allowlist</code> only matching ones do.</p>
</section>`;
}

function changesSection(changes: readonly PolicyChangeRecord[]): SafeHtml {
  if (changes.length === 0) return html``;
  return html`<section><h2>Mode changes</h2>
<table id="policy-changes"><thead><tr><th>When</th><th>From</th><th>To</th><th>By</th><th>Via</th></tr></thead><tbody>
${changes.map((c) => html`<tr><td>${fmtTime(c.at)}</td><td>${c.from}</td><td>${c.to}${c.reset ? html` <span class="muted">(registrar.yaml)</span>` : ''}</td><td>${c.by}</td><td>${c.via}</td></tr>`)}
</tbody></table></section>`;
}

export function policyPage(p: PolicyView, csrf: string): SafeHtml {
  return html`<h1>Admission policy</h1>
${modeSection(p.mode, csrf, p.refusalStatus)}
<section><h2>Allowlist</h2>
<p class="muted">Serials or glob patterns (<code>*</code> any run, <code>?</code> one character). Entries from the configuration file are read-only here.</p>
<table id="allowlist"><thead><tr><th>Entry</th><th>Source</th><th></th></tr></thead><tbody>
${p.configAllowlist.map((e) => html`<tr><td><code>${e}</code></td><td>registrar.yaml</td><td></td></tr>`)}
${p.adminAllowlist.map((e) => html`<tr data-entry="${e}"><td><code>${e}</code></td><td>operator</td><td>
<form method="post" action="/console/policy/allowlist/remove" class="inline">${csrfField(csrf)}<input type="hidden" name="entry" value="${e}"><button type="submit" class="danger">Remove</button></form></td></tr>`)}
</tbody></table>
${p.configAllowlist.length + p.adminAllowlist.length === 0 ? html`<p class="muted">The allowlist is empty.</p>` : ''}
<form method="post" action="/console/policy/allowlist" class="inline">
  ${csrfField(csrf)}<label>Add entry <input type="text" name="entry" required maxlength="128" pattern="[\\x21-\\x7e]+" placeholder="PSIM-0000??"></label>
  <button type="submit">Add</button>
</form>
</section>
${changesSection(p.changes)}`;
}
