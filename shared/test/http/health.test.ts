import http from 'node:http';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthChecks, healthRoutes } from '../../src/http/health.ts';
import { closeGracefully, listen } from '../../src/http/server.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { captureLogger } from './capture.ts';
import { createLogger } from '../../src/observability/logger.ts';

async function get(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

describe('/healthz and /metrics', () => {
  const checks = new HealthChecks();
  const metrics = createMetrics('masa');
  let healthy = true;
  let server: http.Server;
  let port: number;

  beforeAll(async () => {
    checks.add('redis', () => { if (!healthy) throw new Error('Connection is closed.'); });
    checks.add('signer', async () => 'ok');
    const app = new Koa();
    app.use(healthRoutes({ checks, metrics }).routes());
    server = http.createServer(app.callback());
    port = await listen(server, 0);
  });
  afterAll(() => closeGracefully(server, 1_000));

  it('answers 200 with every check ok', async () => {
    const r = await get(port, '/healthz');
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body);
    expect(body.status).toBe('ok');
    expect(Object.keys(body.checks)).toEqual(['redis', 'signer']);
  });

  it('answers 503 naming the failed check', async () => {
    healthy = false;
    const r = await get(port, '/healthz');
    healthy = true;
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toMatchObject({ status: 'fail', checks: { redis: { status: 'fail', error: 'Connection is closed.' }, signer: { status: 'ok' } } });
  });

  it('a check that hangs fails after its timeout', async () => {
    const c = new HealthChecks().add('stuck', () => new Promise(() => undefined), { timeoutMs: 50 });
    expect(await c.run()).toMatchObject({ status: 'fail', checks: { stuck: { status: 'fail', error: 'no answer within 50 ms' } } });
    expect(() => c.add('stuck', () => undefined)).toThrow(/already registered/);
  });

  it('serves Prometheus text from the service registry', async () => {
    metrics.refusals.inc({ reason: 'unknown-device' });
    const custom = metrics.counter('brski_vouchers_issued_total', 'vouchers', ['format']);
    custom.inc({ format: 'cose' });
    // Asking again returns the same metric instead of a duplicate-registration error.
    expect(metrics.counter('brski_vouchers_issued_total', 'vouchers', ['format'])).toBe(custom);
    const r = await get(port, '/metrics');
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^text\/plain/);
    expect(r.body).toContain('brski_refusals_total{reason="unknown-device",service="masa"} 1');
    expect(r.body).toContain('brski_vouchers_issued_total{format="cose",service="masa"} 1');
    expect(r.body).toContain('process_cpu_user_seconds_total');
  });

  it('keeps two services apart in one process', async () => {
    const other = createMetrics('registrar', { processMetrics: false });
    expect(await other.text()).not.toContain('brski_vouchers_issued_total');
  });
});

describe('logger', () => {
  it('writes JSON lines with level labels and redacts secrets', () => {
    const { logger, lines } = captureLogger();
    logger.info({ config: { hsm: { pin: '1234', module: 'm' } }, token: 'abc', headers: { authorization: 'Bearer x' },
      key: { privateKey: 'PRIVATE' } }, 'start');
    const l = lines.at(-1)!;
    expect(l).toMatchObject({ level: 'info', service: 'test', msg: 'start', token: '[redacted]' });
    const text = JSON.stringify(l);
    for (const secret of ['1234', 'abc', 'Bearer x', 'PRIVATE']) expect(text).not.toContain(secret);
    expect(text).toContain('"module":"m"');
  });

  it('takes its level from the environment unless given, and refuses an unknown level', () => {
    expect(createLogger({ name: 'x' }, { BRSKI_LOG_LEVEL: 'debug' }).level).toBe('debug');
    expect(createLogger({ name: 'x' }, { LOG_LEVEL: 'warn' }).level).toBe('warn');
    expect(createLogger({ name: 'x', level: 'error' }, { BRSKI_LOG_LEVEL: 'debug' }).level).toBe('error');
    expect(createLogger({ name: 'x' }, {}).level).toBe('info');
    expect(() => createLogger({ name: 'x' }, { BRSKI_LOG_LEVEL: 'verbose' })).toThrow(/not one of/);
  });
});
