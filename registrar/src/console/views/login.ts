import { html, type SafeHtml } from '../html.ts';
import { frame } from './layout.ts';

export function loginPage(o: { domain: string; loginCsrf: string; error?: string; next?: string }): SafeHtml {
  return frame({ title: 'Log in', domain: o.domain, ...(o.error ? { flash: { kind: 'error' as const, text: o.error } } : {}) }, html`
<section class="login">
  <h1>Operator login</h1>
  <p>Enter the registrar admin token (<code>admin.token</code> in registrar.yaml). It is checked once and never stored in the browser:
  the console keeps a session cookie instead.</p>
  <form method="post" action="/console/login">
    <input type="hidden" name="_login" value="${o.loginCsrf}">
    ${o.next ? html`<input type="hidden" name="next" value="${o.next}">` : ''}
    <input type="text" name="username" value="admin" autocomplete="username" hidden>
    <label>Admin token <input type="password" name="token" autocomplete="current-password" required minlength="16" autofocus></label>
    <button type="submit">Log in</button>
  </form>
</section>`);
}
