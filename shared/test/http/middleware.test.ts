import https from 'node:https';
import tls from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import Koa from 'koa';
import { Router } from '@koa/router';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrskiError } from '../../src/errors.ts';
import { closeGracefully, createTlsServer, listen } from '../../src/http/server.ts';
import {
  errorHandler, logAppErrors, logOutcome, peerCertificates, rawBody, requestLog, requireContentType, requirePeerCertificate, timeout,
} from '../../src/http/middleware.ts';
import { createMetrics, type Metrics } from '../../src/observability/metrics.ts';
import { makeTestPki, type TestPki } from './certs.ts';
import { request } from './client.ts';
import { captureLogger } from './capture.ts';

let pki: TestPki;
let server: https.Server;
let port: number;
let metrics: Metrics;
let lines: Array<Record<string, unknown>>;
const seenChains: Array<readonly X509Certificate[]> = [];
const bodyErrors: unknown[] = [];
let lastSignal: AbortSignal | undefined;
let lateSignal: AbortSignal | undefined;

beforeAll(async () => {
  pki = makeTestPki();
  const cap = captureLogger();
  lines = cap.lines;
  metrics = createMetrics('test', { processMetrics: false });
  const app = new Koa();
  logAppErrors(app, cap.logger);
  app.use(requestLog({ logger: cap.logger, metrics }));
  app.use(errorHandler({ logger: cap.logger, metrics }));
  const router = new Router();
  router.get('/refuse', () => { throw new BrskiError('not-authorized', 'pledge 0001 is not on the allow list'); });
  router.get('/pending', () => { throw new BrskiError('pending', 'waiting for the MASA', { retryAfter: 7.2 }); });
  router.get('/unavailable', () => { throw new BrskiError('unavailable', 'store down', { retryAfter: 5 }); });
  router.get('/crash', () => { throw new Error('secret internals at /srv/app.ts:42'); });
  router.get('/internal', () => { throw new BrskiError('internal', 'db pool state xyz'); });
  router.get('/koa404', (ctx) => ctx.throw(404, 'no such thing'));
  router.get('/injection', () => { throw new BrskiError('malformed', 'bad\r\nX-Evil: 1'); });
  router.post('/body',
    async (ctx, next) => { try { await next(); } catch (e) { bodyErrors.push(e); throw e; } },
    rawBody({ limit: 64 }),
    (ctx) => { ctx.body = `got ${ctx.state.body?.length}`; });
  router.post('/typed', requireContentType('application/voucher-cms+json', 'application/json'), (ctx) => { ctx.body = 'typed ok'; });
  router.get('/peer', (ctx) => {
    const chain = peerCertificates(ctx);
    seenChains.push(chain);
    ctx.body = chain.map((c) => c.subject.replace(/\n/g, ',')).join(' | ');
  });
  router.get('/need-cert', (ctx) => { ctx.body = requirePeerCertificate(ctx).subject; });
  router.get('/slow', timeout({ ms: 100, retryAfter: 3 }), async (ctx) => {
    lastSignal = ctx.state['signal'] as AbortSignal;
    await new Promise((r) => setTimeout(r, 2_000));
    ctx.body = 'too late';
  });
  router.get('/quick', timeout(1_000), (ctx) => { ctx.body = 'quick'; });
  router.get('/slow-late-look', timeout({ ms: 100 }), async (ctx) => {
    await new Promise((r) => setTimeout(r, 300));
    lateSignal = ctx.state['signal'] as AbortSignal; // first looked at after the deadline
    ctx.body = 'too late';
  });
  router.get('/outcome', (ctx) => { logOutcome(ctx, 'thing issued', { serial: 'S-1', seq: 3 }); ctx.body = 'ok'; });
  router.get('/outcome-then-fail', (ctx) => { logOutcome(ctx, 'thing issued', { serial: 'S-2' }); throw new BrskiError('forbidden', 'no'); });
  app.use(router.routes());
  server = createTlsServer(app, { key: pki.serverKey, cert: pki.serverCert, ca: pki.rootCert });
  port = await listen(server, 0);
});
afterAll(async () => {
  await closeGracefully(server, 1_000);
  pki.cleanup();
});

const base = () => ({ ca: pki.rootCert, servername: 'localhost' });

describe('errorHandler', () => {
  it('maps a BrskiError to its status with a plain-text "<code>: <message>" body, logs and counts it', async () => {
    const r = await request(port, '/refuse', base());
    expect(r.status).toBe(404);
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(r.body).toBe('not-authorized: pledge 0001 is not on the allow list\n');
    expect(r.headers['retry-after']).toBeUndefined();
    const line = lines.find((l) => l['msg'] === 'refused' && l['code'] === 'not-authorized');
    expect(line).toMatchObject({ level: 'warn', path: '/refuse', reason: 'pledge 0001 is not on the allow list' });
    expect(String(line?.['peer'])).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(await metrics.text()).toMatch(/brski_refusals_total\{reason="not-authorized",service="test"\} 1/);
  });

  it('sets Retry-After (whole seconds) when the error carries one', async () => {
    const p = await request(port, '/pending', base());
    expect(p.status).toBe(202);
    expect(p.headers['retry-after']).toBe('8');
    const u = await request(port, '/unavailable', base());
    expect(u.status).toBe(503);
    expect(u.headers['retry-after']).toBe('5');
    expect(u.body).toBe('unavailable: store down\n');
  });

  it('answers unknown errors with a generic 500, never the message or stack, and logs at error level', async () => {
    const r = await request(port, '/crash', base());
    expect(r.status).toBe(500);
    expect(r.body).toBe('internal error\n');
    expect(r.body).not.toContain('secret');
    const line = lines.find((l) => l['msg'] === 'unhandled error');
    expect(line?.['level']).toBe('error');
    expect(JSON.stringify(line)).toContain('secret internals'); // the details go to the log
  });

  it('does not echo the message of an internal BrskiError either', async () => {
    const r = await request(port, '/internal', base());
    expect(r.status).toBe(500);
    expect(r.body).not.toContain('xyz');
  });

  it('keeps deliberate koa client errors and strips line breaks from messages', async () => {
    const r = await request(port, '/koa404', base());
    expect(r.status).toBe(404);
    expect(r.body).toBe('http-404: no such thing\n');
    const inj = await request(port, '/injection', base());
    expect(inj.status).toBe(400);
    expect(inj.body).toBe('malformed: bad X-Evil: 1\n');
    expect(inj.headers['x-evil']).toBeUndefined();
  });
});

describe('rawBody', () => {
  it('reads a body within the limit', async () => {
    const r = await request(port, '/body', { ...base(), body: 'x'.repeat(64) });
    expect(r).toMatchObject({ status: 200, body: 'got 64' });
  });

  it('refuses an oversized Content-Length with 413 before the body is sent', async () => {
    // Send the headers only: a server that tried to read the body first would never answer.
    const reply = await rawExchange(`POST /body HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n`);
    expect(reply).toMatch(/^HTTP\/1\.1 413 /);
    expect(reply).toMatch(/too-large: input exceeds the limit of 64 bytes \(got 1000000\)/);
    expect(reply.toLowerCase()).toContain('connection: close');
  });

  it('refuses an oversized chunked body with 413 while streaming', async () => {
    const r = await request(port, '/body', { ...base(), body: 'y'.repeat(65), headers: { 'transfer-encoding': 'chunked' } });
    expect(r.status).toBe(413);
  });

  it('refuses a body that stops short of its Content-Length (400 malformed)', async () => {
    bodyErrors.length = 0;
    await rawExchange(`POST /body HTTP/1.1\r\nHost: localhost\r\nContent-Length: 50\r\n\r\nonly-ten!!`, { endAfterWrite: true }).catch(() => '');
    await waitFor(() => bodyErrors.length > 0);
    expect(bodyErrors[0]).toBeInstanceOf(BrskiError);
    expect((bodyErrors[0] as BrskiError).code).toBe('malformed');
  });

  it('refuses compressed bodies (415): we never inflate', async () => {
    const gz = await request(port, '/body', { ...base(), body: 'abc', headers: { 'content-encoding': 'gzip' } });
    expect(gz.status).toBe(415);
  });
});

describe('requireContentType', () => {
  it('accepts listed types with parameters and case differences, refuses others with 415', async () => {
    const ok = await request(port, '/typed', { ...base(), body: '{}', headers: { 'content-type': 'Application/JSON; charset=utf-8' } });
    expect(ok).toMatchObject({ status: 200, body: 'typed ok' });
    const bad = await request(port, '/typed', { ...base(), body: '{}', headers: { 'content-type': 'text/plain' } });
    expect(bad.status).toBe(415);
    expect(bad.body).toMatch(/^unsupported-media-type: /);
    const none = await request(port, '/typed', { ...base(), body: '{}' });
    expect(none.status).toBe(415);
  });
});

describe('peerCertificates over a real TLS connection', () => {
  it('returns the client chain leaf first, each issuer after its subject', async () => {
    const r = await request(port, '/peer', { ...base(), key: pki.clientKey, cert: pki.clientChain });
    expect(r.status).toBe(200);
    const subjects = r.body.split(' | ');
    expect(subjects[0]).toContain('CN=pledge-0001');
    expect(subjects[1]).toContain('CN=Test Intermediate CA');
    const chain = seenChains.at(-1)!;
    for (let i = 0; i + 1 < chain.length; i++) expect(chain[i]!.checkIssued(chain[i + 1]!)).toBe(true);
  });

  it('returns nothing when the client sent no certificate, and requirePeerCertificate answers 401', async () => {
    expect((await request(port, '/peer', base())).body).toBe('');
    const r = await request(port, '/need-cert', base());
    expect(r.status).toBe(401);
    expect(r.body).toMatch(/^unauthenticated: /);
  });

  it('hands over an untrusted self-signed certificate as is (trust is the app\'s decision)', async () => {
    const r = await request(port, '/peer', { ...base(), key: pki.rogueKey, cert: pki.rogueCert });
    expect(r.body).toBe('CN=rogue');
  });

  it('caches the chain per socket across keep-alive requests', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    const opts = { ...base(), key: pki.clientKey, cert: pki.clientChain, agent };
    seenChains.length = 0;
    await request(port, '/peer', opts);
    await request(port, '/peer', opts);
    agent.destroy();
    expect(seenChains).toHaveLength(2);
    expect(seenChains[1]).toBe(seenChains[0]);
  });
});

describe('timeout', () => {
  it('answers 503 with Retry-After and aborts the request signal when the chain is too slow', async () => {
    const r = await request(port, '/slow', base());
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('3');
    expect(lastSignal?.aborted).toBe(true);
  });
  it('a signal first looked at after the deadline is already aborted', async () => {
    expect((await request(port, '/slow-late-look', base())).status).toBe(503);
    await new Promise((r) => setTimeout(r, 400));
    expect(lateSignal?.aborted).toBe(true);
  });
  it('does not interfere with quick answers', async () => {
    expect(await request(port, '/quick', base())).toMatchObject({ status: 200, body: 'quick' });
  });
});

describe('requestLog', () => {
  it('echoes a sane request id, replaces an unsafe one, and labels metrics by route pattern', async () => {
    const a = await request(port, '/quick', { ...base(), headers: { 'x-request-id': 'abc-123' } });
    expect(a.headers['x-request-id']).toBe('abc-123');
    const b = await request(port, '/quick', { ...base(), headers: { 'x-request-id': 'no spaces <allowed>' } });
    expect(b.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const line = lines.find((l) => l['msg'] === 'request' && l['reqId'] === 'abc-123');
    expect(line).toMatchObject({ method: 'GET', path: '/quick', status: 200 });
    expect(typeof line?.['ms']).toBe('number');
    const text = await metrics.text();
    expect(text).toMatch(/http_requests_total\{route="\/quick",method="GET",status="200",service="test"\} [1-9]/);
    expect(text).toMatch(/http_requests_total\{route="\/refuse",method="GET",status="404"/);
    expect(text).toContain('http_request_duration_seconds_bucket');
  });

  it("a handler's outcome becomes the request's one line; a failed request keeps the plain line", async () => {
    await request(port, '/outcome', { ...base(), headers: { 'x-request-id': 'out-1' } });
    const mine = lines.filter((l) => l['reqId'] === 'out-1');
    expect(mine).toEqual([expect.objectContaining({ msg: 'thing issued', serial: 'S-1', seq: 3, method: 'GET', path: '/outcome', status: 200 })]);
    await request(port, '/outcome-then-fail', { ...base(), headers: { 'x-request-id': 'out-2' } });
    const failed = lines.filter((l) => l['reqId'] === 'out-2' && l['path'] === '/outcome-then-fail' && l['msg'] === 'request');
    expect(failed).toEqual([expect.objectContaining({ status: 403 })]);
    expect(lines.some((l) => l['reqId'] === 'out-2' && l['msg'] === 'thing issued')).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------

function rawExchange(payload: string, opts: { endAfterWrite?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: pki.rootCert, servername: 'localhost' }, () => {
      s.write(payload);
      if (opts.endAfterWrite) s.end();
    });
    let data = '';
    s.on('data', (d: Buffer) => {
      data += d.toString();
      if (/\r\n\r\n[\s\S]*\n$/.test(data)) { s.destroy(); resolve(data); }
    });
    s.on('error', reject);
    s.on('close', () => resolve(data));
  });
}

async function waitFor(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
