import { html, type SafeHtml } from '../html.ts';
import { csrfField } from './layout.ts';

export interface PolicyView { mode: string; configAllowlist: readonly string[]; adminAllowlist: readonly string[]; refusalStatus?: number }

const MODE_TEXT: Record<string, string> = {
  accept: 'every pledge of a trusted manufacturer gets a voucher',
  allowlist: 'only serials matching the allowlist get a voucher; others are refused',
  approve: 'allow-listed serials pass; every other pledge waits in the approval queue until an operator decides',
};

export function policyPage(p: PolicyView, csrf: string): SafeHtml {
  return html`<h1>Admission policy</h1>
<section><h2>Mode</h2>
<p>Mode <strong id="policy-mode">${p.mode}</strong>: ${MODE_TEXT[p.mode] ?? ''}.${p.refusalStatus ? html` Refused pledges get HTTP ${p.refusalStatus}.` : ''}</p>
<p class="muted">The mode is set in registrar.yaml (<code>policy.mode</code>) and takes effect on restart, so that every registrar process sharing the store applies the same rule.</p>
</section>
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
</section>`;
}
