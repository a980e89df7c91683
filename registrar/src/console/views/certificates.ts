import { html, type SafeHtml } from '../html.ts';
import type { CertificateRecord, CrlRecord, RevocationReason } from '../../store/types.ts';
import { csrfField, fmtTime } from './layout.ts';

export interface CertificatesPaging { q?: string; offset: number; limit: number; total: number }

function pager(o: CertificatesPaging): SafeHtml {
  if (o.q) return html`<p class="muted">${o.total} certificate(s) for <code>${o.q}</code> (exact certificate or device serial). <a href="/console/certificates">All certificates</a></p>`;
  if (o.total === 0) return html``;
  const to = Math.min(o.offset + o.limit, o.total);
  const prev = Math.max(0, o.offset - o.limit);
  return html`<p class="pager" id="cert-pager">Issued ${o.offset + 1}–${to} of ${o.total}, newest first.
${o.offset > 0 ? html` <a href="/console/certificates?offset=${prev}" rel="prev">Newer</a>` : ''}
${to < o.total ? html` <a href="/console/certificates?offset=${to}" rel="next">Older</a>` : ''}</p>`;
}

export const REVOCATION_REASONS: readonly RevocationReason[] = ['unspecified', 'keyCompromise', 'superseded', 'cessationOfOperation', 'affiliationChanged'];

export function certificatesPage(certs: readonly CertificateRecord[], crl: CrlRecord | undefined, csrf: string, o: CertificatesPaging): SafeHtml {
  return html`<h1>Certificates</h1>
<section class="crl"><h2>Certificate revocation list</h2>
<p>${crl ? html`CRL number ${crl.crlNumber}, next update ${fmtTime(crl.nextUpdate)}.` : html`<span class="muted">No CRL generated yet; downloading creates one.</span>`}
 <a href="/console/certificates/crl" download="domain-ca.crl" id="crl-download" class="button">Download CRL (DER)</a></p>
</section>
<section><h2>Issued LDevIDs</h2>
<form class="filters" method="get" action="/console/certificates"><label>Certificate or device serial <input type="search" name="q" value="${o.q ?? ''}"></label><button type="submit">Find</button></form>
${pager(o)}
<table id="certificates"><thead><tr><th>Certificate serial</th><th>Device</th><th>Issued</th><th>Not after</th><th>Status</th><th>Revoke</th></tr></thead><tbody>
${certs.map((c) => html`<tr data-cert="${c.serialNumber}"><td><code>${c.serialNumber}</code></td>
<td><a href="/console/devices/${encodeURIComponent(c.pledgeSerial)}">${c.pledgeSerial}</a></td><td>${fmtTime(c.issuedAt)}</td><td>${fmtTime(c.notAfter)}</td>
<td>${c.revokedAt ? html`<span class="badge bad">revoked</span> ${c.revocationReason ?? ''}` : c.supersededBy ? html`<span class="badge">superseded</span>` : html`<span class="badge ok">current</span>`}</td>
<td>${c.revokedAt ? fmtTime(c.revokedAt) : html`<form method="post" action="/console/certificates/${encodeURIComponent(c.serialNumber)}/revoke" class="inline" data-confirm="Revoke certificate ${c.serialNumber} of ${c.pledgeSerial}?">
  ${csrfField(csrf)}<select name="reason" aria-label="reason">${REVOCATION_REASONS.map((r) => html`<option value="${r}">${r}</option>`)}</select>
  <button type="submit" class="danger">Revoke</button></form>`}</td></tr>`)}
</tbody></table>
${certs.length === 0 ? html`<p class="muted">No certificates.</p>` : ''}
</section>`;
}
