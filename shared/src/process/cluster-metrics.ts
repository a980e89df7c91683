/**
 * The primary's side of `/metrics` when a service runs as several workers: it asks every live
 * worker for its registry (prom-client's worker protocol, answered by the AggregatorRegistry
 * listener that `withClusterMetrics` installs in each worker) and sums the answers with
 * `AggregatorRegistry.aggregate`, together with what the workers that have died had counted.
 *
 * Why not `AggregatorRegistry.clusterMetrics()`: it sums the live workers only, so when a worker
 * is replaced every counter of the service drops by that worker's share, which Prometheus reads as
 * a counter reset (`rate()` then takes the survivors' whole totals as new increase). Here the last
 * snapshot each worker answered is kept; when the worker exits, its counters and histograms are
 * kept as a retired total (gauges are not: a dead process has no current value). What a worker
 * counted after the last scrape it answered is lost with it, but the sum never goes down from one
 * scrape to the next.
 */
import type { Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

/** prom-client's message types between primary and worker (lib/cluster.js). */
const REQUEST = 'prom-client:getMetricsReq';
const RESPONSE = 'prom-client:getMetricsRes';

type MetricJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];
type Snapshot = MetricJson[];

/** Counters and histograms only. prom-client's typings say an enum; at run time `type` is the name ('counter'). */
function isMonotonic(m: MetricJson): boolean {
  const type = m.type as unknown as string;
  return type === 'counter' || type === 'histogram';
}

interface WorkerAnswer { type: typeof RESPONSE; requestId: number; metrics?: Snapshot[]; error?: string }

interface PendingRequest { waiting: Set<number>; answers: Map<number, Snapshot>; settle(error?: Error): void }

export class ClusterMetricsCollector {
  #nextId = 0;
  readonly #pending = new Map<number, PendingRequest>();
  /** Worker id → the metrics it last answered with. */
  readonly #last = new Map<number, Snapshot>();
  /** Counters and histograms of exited workers (folded into one snapshot when read). */
  #retired: Snapshot[] = [];

  constructor(private readonly timeoutMs = 5_000) {}

  /** Hand every message a worker sends here; true when it was an answer to a metrics request. */
  onWorkerMessage(worker: Worker, message: unknown): boolean {
    const m = message as Partial<WorkerAnswer> | undefined;
    if (m?.type !== RESPONSE || typeof m.requestId !== 'number') return false;
    const p = this.#pending.get(m.requestId);
    if (!p || !p.waiting.delete(worker.id)) return true;
    if (m.error !== undefined) { p.settle(new Error(`worker ${worker.id}: ${m.error}`)); return true; }
    p.answers.set(worker.id, (m.metrics ?? []).flat());
    if (p.waiting.size === 0) p.settle();
    return true;
  }

  /** A worker exited: keep what it had counted, and stop waiting for its answer. */
  retire(workerId: number): void {
    let last = this.#last.get(workerId);
    this.#last.delete(workerId);
    for (const p of this.#pending.values()) {
      // An answer to a request still in flight is newer than #last; it counts as retired, not live.
      const answered = p.answers.get(workerId);
      if (answered) { last = answered; p.answers.delete(workerId); }
      if (p.waiting.delete(workerId) && p.waiting.size === 0) p.settle();
    }
    if (last) this.#retired.push(last.filter(isMonotonic));
  }

  /** The service's metrics in the Prometheus text format: live workers plus retired totals. */
  async text(workers: readonly Worker[]): Promise<string> {
    const answers = await this.#ask(workers.filter((w) => w.isConnected()));
    for (const [id, snapshot] of answers) this.#last.set(id, snapshot);
    if (this.#retired.length > 1) {
      this.#retired = [await AggregatorRegistry.aggregate(this.#retired).getMetricsAsJSON()];
    }
    return AggregatorRegistry.aggregate([...this.#retired, ...answers.values()]).metrics();
  }

  #ask(workers: readonly Worker[]): Promise<Map<number, Snapshot>> {
    const requestId = this.#nextId++;
    const answers = new Map<number, Snapshot>();
    if (workers.length === 0) return Promise.resolve(answers);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => settle(new Error(`workers did not answer the metrics request within ${this.timeoutMs} ms`)), this.timeoutMs);
      const settle = (error?: Error): void => {
        clearTimeout(timer);
        this.#pending.delete(requestId);
        if (error) reject(error); else resolve(answers);
      };
      this.#pending.set(requestId, { waiting: new Set(workers.map((w) => w.id)), answers, settle });
      for (const w of workers) w.send({ type: REQUEST, requestId });
    });
  }
}
