/**
 * Koa applications: the pledge-facing one (BRSKI + EST + /healthz) and the operator one
 * (admin API + /healthz + /metrics). Middleware order: request log → error mapping → routes.
 */
import Koa from 'koa';
import type { Logger } from 'pino';
import { errorHandler, requestLog } from '@brski/shared/http/middleware';
import { healthRoutes, type HealthChecks } from '@brski/shared/http/health';
import type { Metrics } from '@brski/shared/observability/metrics';
import type { Router } from '@koa/router';

export function buildApp(routers: Router[], deps: { logger: Logger; metrics: Metrics; health: HealthChecks; withMetrics: boolean }): Koa {
  const app = new Koa();
  app.proxy = false;
  app.silent = true; // errors are logged by errorHandler, not by koa's default stderr printer
  app.use(requestLog({ logger: deps.logger, metrics: deps.metrics }));
  app.use(errorHandler({ logger: deps.logger, metrics: deps.metrics }));
  const health = healthRoutes({ checks: deps.health, ...(deps.withMetrics ? { metrics: deps.metrics } : {}) });
  for (const r of [health, ...routers]) app.use(r.routes()).use(r.allowedMethods());
  return app;
}
