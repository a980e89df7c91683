/**
 * ClusterMetricsCollector with stand-in workers that answer with real prom-client registries
 * (the process-level behaviour is in test/cluster/masa-workers.test.ts).
 */
import type { Worker } from 'node:cluster';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ClusterMetricsCollector } from '../../src/process/cluster-metrics.ts';

interface FakeWorker { worker: Worker; registry: Registry; count(n: number): void; set(v: number): void; observe(v: number): void;
  /** 'answer' (default), 'silent' (never answers), 'error', or 'hold' (answers only when release() is called). */
  mode: 'answer' | 'silent' | 'error' | 'hold'; release(): Promise<void> }

function fakeWorker(collector: ClusterMetricsCollector, id: number): FakeWorker {
  const registry = new Registry();
  const counter = new Counter({ name: 'vouchers_total', help: 'h', labelNames: ['format'], registers: [registry] });
  const gauge = new Gauge({ name: 'queue_depth', help: 'h', registers: [registry] });
  const histogram = new Histogram({ name: 'latency_seconds', help: 'h', buckets: [0.1, 1], registers: [registry] });
  let held: (() => Promise<void>) | undefined;
  const answer = async (requestId: number): Promise<void> => {
    const metrics = [await registry.getMetricsAsJSON()];
    collector.onWorkerMessage(fake.worker, { type: 'prom-client:getMetricsRes', requestId, metrics });
  };
  const fake: FakeWorker = {
    registry, mode: 'answer',
    count: (n) => counter.inc({ format: 'jws' }, n), set: (v) => gauge.set(v), observe: (v) => histogram.observe(v),
    release: async () => { await held?.(); held = undefined; },
    worker: {
      id, isConnected: () => true,
      send(m: { type: string; requestId: number }) {
        if (fake.mode === 'silent') return true;
        if (fake.mode === 'error') {
          queueMicrotask(() => collector.onWorkerMessage(fake.worker, { type: 'prom-client:getMetricsRes', requestId: m.requestId, error: 'boom' }));
        } else if (fake.mode === 'hold') held = () => answer(m.requestId);
        else void answer(m.requestId);
        return true;
      },
    } as unknown as Worker,
  };
  return fake;
}

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('ClusterMetricsCollector', () => {
  it('sums the live workers and keeps the counters and histograms of a worker that exited, not its gauges', async () => {
    const c = new ClusterMetricsCollector();
    const a = fakeWorker(c, 1);
    const b = fakeWorker(c, 2);
    a.count(3); a.set(7); a.observe(0.5);
    b.count(4); b.set(1); b.observe(2);
    const first = await c.text([a.worker, b.worker]);
    expect(value(first, 'vouchers_total{format="jws"}')).toBe(7);
    expect(value(first, 'queue_depth')).toBe(8);
    expect(value(first, 'latency_seconds_count')).toBe(2);

    c.retire(1);
    const replacement = fakeWorker(c, 3);
    replacement.count(1); replacement.set(2);
    b.count(1);
    const second = await c.text([b.worker, replacement.worker]);
    expect(value(second, 'vouchers_total{format="jws"}')).toBe(3 + 5 + 1); // never below the first scrape's 7
    expect(value(second, 'queue_depth')).toBe(1 + 2); // the dead worker's gauge is gone
    expect(value(second, 'latency_seconds_count')).toBe(2);
    expect(value(second, 'latency_seconds_bucket{le="1"}')).toBe(1);

    // Retired totals accumulate over several deaths, and are folded without double counting.
    c.retire(2);
    c.retire(3);
    const fourth = fakeWorker(c, 4);
    for (let i = 0; i < 2; i++) expect(value(await c.text([fourth.worker]), 'vouchers_total{format="jws"}')).toBe(9);
  });

  it('a worker that exits while a scrape waits: its answer counts once, then as retired', async () => {
    const c = new ClusterMetricsCollector();
    const a = fakeWorker(c, 1);
    const b = fakeWorker(c, 2);
    a.count(5); b.count(2);
    b.mode = 'hold';
    const pending = c.text([a.worker, b.worker]);
    await new Promise((r) => setTimeout(r, 10)); // a has answered; b holds its answer
    c.retire(1);
    await b.release();
    expect(value(await pending, 'vouchers_total{format="jws"}')).toBe(7);
    b.mode = 'answer';
    expect(value(await c.text([b.worker]), 'vouchers_total{format="jws"}')).toBe(7);
  });

  it('a worker that never answers fails the scrape after the timeout; a worker error fails it at once', async () => {
    const c = new ClusterMetricsCollector(50);
    const a = fakeWorker(c, 1);
    const b = fakeWorker(c, 2);
    b.mode = 'silent';
    await expect(c.text([a.worker, b.worker])).rejects.toThrow(/did not answer the metrics request within 50 ms/);
    b.mode = 'error';
    await expect(c.text([a.worker, b.worker])).rejects.toThrow(/worker 2: boom/);
    // A late answer to a finished request is ignored, and no worker at all is an empty exposition.
    expect(c.onWorkerMessage(a.worker, { type: 'prom-client:getMetricsRes', requestId: 0, metrics: [] })).toBe(true);
    expect((await new ClusterMetricsCollector().text([])).trim()).toBe('');
  });
});
