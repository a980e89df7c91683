/**
 * Prometheus metrics: one prom-client Registry per service (never the global one, so two
 * services in one process — the demo — do not collide), default process metrics, and the HTTP
 * request counter + latency histogram every route shares.
 */
import { Counter, Histogram, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly service: string;
  readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  readonly httpDuration: Histogram<'route' | 'method' | 'status'>;
  /** Refusals by error code (BrskiError.code), incremented by the error handler. */
  readonly refusals: Counter<'reason'>;
  counter<L extends string = string>(name: string, help: string, labelNames?: readonly L[]): Counter<L>;
  histogram<L extends string = string>(name: string, help: string, labelNames?: readonly L[],
    buckets?: readonly number[]): Histogram<L>;
  gauge<L extends string = string>(name: string, help: string, labelNames?: readonly L[]): Gauge<L>;
  /** Prometheus text exposition of everything on this registry. */
  text(): Promise<string>;
}

/** Latency buckets (seconds) for an onboarding stack: sub-ms signing up to multi-second MASA waits. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface MetricsOptions {
  /** Collect default process metrics (CPU, memory, event loop lag). Default true. */
  processMetrics?: boolean;
}

export function createMetrics(serviceName: string, opts: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: serviceName });
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry });

  // Returns the metric already registered under `name` so that modules sharing a registry can
  // each ask for "their" counter without coordinating creation order.
  function existing<T>(name: string): T | undefined {
    return registry.getSingleMetric(name) as T | undefined;
  }
  function counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return existing<Counter<L>>(name)
      ?? new Counter<L>({ name, help, labelNames: [...labelNames], registers: [registry] });
  }
  function histogram<L extends string>(name: string, help: string, labelNames: readonly L[] = [],
    buckets: readonly number[] = LATENCY_BUCKETS): Histogram<L> {
    return existing<Histogram<L>>(name)
      ?? new Histogram<L>({ name, help, labelNames: [...labelNames], buckets: [...buckets], registers: [registry] });
  }
  function gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return existing<Gauge<L>>(name)
      ?? new Gauge<L>({ name, help, labelNames: [...labelNames], registers: [registry] });
  }

  return {
    registry,
    service: serviceName,
    httpRequests: counter('http_requests_total', 'HTTP requests answered', ['route', 'method', 'status']),
    httpDuration: histogram('http_request_duration_seconds', 'HTTP request latency', ['route', 'method', 'status']),
    refusals: counter('brski_refusals_total', 'Requests refused, by error code', ['reason']),
    counter,
    histogram,
    gauge,
    text: () => registry.metrics(),
  };
}
