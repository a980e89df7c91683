/**
 * Page frame: navigation, the CSRF token for htmx (hx-headers on <body>, inherited by every
 * htmx request) and htmx configured for a strict CSP: no injected <style>, no eval, no script
 * tags from swapped content, no history snapshots in sessionStorage (pages carry the CSRF token).
 */
import { html, raw, type SafeHtml } from '../html.ts';

export const HTMX_CONFIG = JSON.stringify({
  includeIndicatorStyles: false, allowEval: false, allowScriptTags: false, historyCacheSize: 0, refreshOnHistoryMiss: true,
  selfRequestsOnly: true,
});

export type Page = 'dashboard' | 'devices' | 'approvals' | 'certificates' | 'policy';
const NAV: Array<[Page, string]> = [['dashboard', 'Dashboard'], ['devices', 'Devices'], ['approvals', 'Approvals'], ['certificates', 'Certificates'], ['policy', 'Policy']];

export interface FrameOptions { title: string; page?: Page; csrf?: string; domain: string; flash?: { kind: 'ok' | 'error'; text: string } }

export function flashBox(f: FrameOptions['flash']): SafeHtml {
  return f ? html`<p class="flash ${f.kind}" role="${f.kind === 'error' ? 'alert' : 'status'}">${f.text}</p>` : html``;
}

export function frame(o: FrameOptions, body: SafeHtml): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<link rel="icon" href="data:,">
<meta name="htmx-config" content="${HTMX_CONFIG}">
<title>${o.title} · BRSKI registrar ${o.domain}</title>
<link rel="stylesheet" href="/console/static/console.css">
<script src="/console/static/htmx.min.js" defer></script>
<script src="/console/static/console.js" defer></script>
</head>
<body${o.csrf ? html` hx-headers="${JSON.stringify({ 'X-CSRF-Token': o.csrf })}"` : raw('')}>
<header class="top">
  <span class="brand">BRSKI registrar <strong>${o.domain}</strong></span>
  ${o.page ? html`<nav>${NAV.map(([p, label]) => html`<a href="/console/${p}"${p === o.page ? raw(' aria-current="page"') : raw('')}>${label}</a>`)}</nav>
  <form method="post" action="/console/logout" class="logout"><input type="hidden" name="_csrf" value="${o.csrf ?? ''}"><button type="submit">Log out</button></form>` : ''}
</header>
<main>
${flashBox(o.flash)}
${body}
</main>
</body>
</html>`;
}

export const fmtTime = (iso: string | undefined): SafeHtml =>
  iso ? html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>` : html`<span class="muted">–</span>`;

export const stateBadge = (state: string): SafeHtml => html`<span class="badge state-${state}">${state}</span>`;

export function csrfField(csrf: string): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${csrf}">`;
}
