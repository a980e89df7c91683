/**
 * `/healthz` and `/metrics`. Health checks are named async functions; a check that throws or
 * does not answer within its timeout makes the service unhealthy (503), so a load balancer
 * takes it out of rotation while e.g. Redis is unreachable.
 */
import { Router } from '@koa/router';
import type { Metrics } from '../observability/metrics.ts';

export type HealthCheck = () => Promise<unknown> | unknown;

export interface CheckResult { status: 'ok' | 'fail'; ms: number; error?: string }
export interface HealthReport { status: 'ok' | 'fail'; checks: Record<string, CheckResult> }

export class HealthChecks {
  private readonly checks = new Map<string, { fn: HealthCheck; timeoutMs: number }>();

  add(name: string, fn: HealthCheck, opts: { timeoutMs?: number } = {}): this {
    if (this.checks.has(name)) throw new Error(`health check ${name} is already registered`);
    this.checks.set(name, { fn, timeoutMs: opts.timeoutMs ?? 2_000 });
    return this;
  }

  remove(name: string): void { this.checks.delete(name); }

  async run(): Promise<HealthReport> {
    const entries = await Promise.all([...this.checks].map(async ([name, { fn, timeoutMs }]) => {
      const start = performance.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          Promise.resolve().then(fn),
          new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs); }),
        ]);
        return [name, { status: 'ok', ms: Math.round(performance.now() - start) }] as const;
      } catch (err) {
        // The message only (no stack, no cause chain): /healthz is often reachable unauthenticated.
        const error = err instanceof Error ? err.message : String(err);
        return [name, { status: 'fail', ms: Math.round(performance.now() - start), error: error.slice(0, 200) }] as const;
      } finally {
        clearTimeout(timer);
      }
    }));
    const checks: Record<string, CheckResult> = Object.fromEntries(entries);
    return { status: entries.every(([, r]) => r.status === 'ok') ? 'ok' : 'fail', checks };
  }
}

export interface HealthRoutesOptions {
  checks: HealthChecks;
  /** When given, `/metrics` serves this registry. */
  metrics?: Metrics;
  healthPath?: string;
  metricsPath?: string;
}

/** A router with GET /healthz (JSON report; 200 or 503) and GET /metrics (Prometheus text). */
export function healthRoutes(opts: HealthRoutesOptions): Router {
  const router = new Router();
  router.get(opts.healthPath ?? '/healthz', async (ctx) => {
    const report = await opts.checks.run();
    ctx.status = report.status === 'ok' ? 200 : 503;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = report;
  });
  const metrics = opts.metrics;
  if (metrics) {
    router.get(opts.metricsPath ?? '/metrics', async (ctx) => {
      ctx.set('Content-Type', metrics.registry.contentType);
      ctx.set('Cache-Control', 'no-store');
      ctx.body = await metrics.text();
    });
  }
  return router;
}
