/**
 * Runs a service in one process, or in N worker processes that share its listening sockets
 * (node:cluster), so that a service whose state is in Redis can use every core. The primary only
 * supervises: it forks the workers, replaces one that dies (with a back-off and a restart budget),
 * turns SIGTERM/SIGINT into a graceful stop of every worker, and answers the workers' `/metrics`
 * with the sum over all of them, including what replaced workers had counted (cluster-metrics.ts),
 * so a scrape sees the service, not whichever worker the connection landed on.
 *
 * node:cluster rather than SO_REUSEPORT listeners: Node has no reusePort option on Node 20, and
 * cluster's round-robin hand-off happens once per connection, which keep-alive clients amortise.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { ClusterMetricsCollector } from './cluster-metrics.ts';

/** What a started service offers the runner. */
export interface RunnableService {
  stop(): Promise<void>;
  readonly logger: Logger;
}

export interface RunServiceOptions<S extends RunnableService> {
  /** Service name for log lines ("masa"). */
  name: string;
  /** 1 = this process serves; N > 1 = N worker processes. */
  workers: number;
  /** The primary's logger (workers log through the service's own). */
  logger: Logger;
  /**
   * Builds and starts the service in this process. `clusterMetrics` is set in a worker: use it as
   * the `/metrics` text source (see `withClusterMetrics`).
   */
  start(worker: { clusterMetrics?: () => Promise<string> }): Promise<S>;
  /** Facts for the "ready" log line of a worker (port, url). */
  describe?(service: S): Record<string, unknown>;
  /** Replacements allowed per minute before the primary gives up and exits 1 (default 5). */
  restartBudgetPerMinute?: number;
  /** How long workers get to finish in-flight requests on stop (default 15 s). */
  stopTimeoutMs?: number;
}

type ToWorker = { type: 'brski:stop' } | { type: 'brski:metrics-res'; id: number; text?: string; error?: string };
type FromWorker = { type: 'brski:ready'; facts: Record<string, unknown> } | { type: 'brski:start-failed'; message: string }
  | { type: 'brski:metrics-req'; id: number };

/** A copy of `metrics` whose text() is the cluster-wide sum (in a worker), else `metrics` itself. */
export function withClusterMetrics(metrics: Metrics, clusterMetrics: (() => Promise<string>) | undefined): Metrics {
  if (!clusterMetrics) return metrics;
  // prom-client answers the primary's requests only in a process that constructed an
  // AggregatorRegistry (that installs its IPC listener); then it reports this registry, not the global one.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([metrics.registry]);
  return { ...metrics, text: clusterMetrics };
}

/**
 * Starts the service (in this process or as a cluster) and stops it on SIGTERM/SIGINT. Resolves
 * once it is serving; rejects when it could not start (config, keys, store): the caller prints
 * the message and exits 1.
 */
export async function runService<S extends RunnableService>(o: RunServiceOptions<S>): Promise<void> {
  if (o.workers <= 1) return runSingle(o);
  if (cluster.isPrimary) return runPrimary(o);
  return runWorker(o);
}

async function runSingle<S extends RunnableService>(o: RunServiceOptions<S>): Promise<void> {
  const service = await o.start({});
  onStopSignal((signal) => {
    service.logger.info({ signal }, 'shutting down');
    service.stop().then(() => process.exit(0), (err: unknown) => {
      service.logger.error({ err }, 'shutdown failed');
      process.exit(1);
    });
  });
}

function onStopSignal(stop: (signal: string) => void): void {
  let stopping = false;
  const once = (signal: string): void => { if (!stopping) { stopping = true; stop(signal); } };
  process.on('SIGTERM', () => once('SIGTERM'));
  process.on('SIGINT', () => once('SIGINT'));
}

// ---- worker -------------------------------------------------------------------------------------

async function runWorker<S extends RunnableService>(o: RunServiceOptions<S>): Promise<void> {
  let nextId = 0;
  const pending = new Map<number, { resolve(text: string): void; reject(e: Error): void }>();
  const clusterMetrics = (): Promise<string> => new Promise((resolve, reject) => {
    const id = ++nextId;
    pending.set(id, { resolve, reject });
    send({ type: 'brski:metrics-req', id });
  });
  let service: S | undefined;
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    const s = service;
    if (!s) { process.exit(0); return; }
    s.stop().then(() => process.exit(0), (err: unknown) => { s.logger.error({ err }, 'shutdown failed'); process.exit(1); });
  };
  process.on('message', (m: ToWorker) => {
    if (m?.type === 'brski:stop') stop();
    else if (m?.type === 'brski:metrics-res') {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (p) m.error !== undefined ? p.reject(new Error(m.error)) : p.resolve(m.text ?? '');
    }
  });
  // The primary orchestrates the stop; a terminal's Ctrl-C reaches the whole process group.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', stop);
  // If the primary dies, the IPC channel closes: do not linger as an orphan holding the port.
  process.on('disconnect', stop);
  try {
    service = await o.start({ clusterMetrics });
  } catch (err) {
    send({ type: 'brski:start-failed', message: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  }
  send({ type: 'brski:ready', facts: o.describe?.(service) ?? {} });
}

function send(m: FromWorker): void {
  process.send?.(m);
}

// ---- primary ------------------------------------------------------------------------------------

/**
 * The primary's workers that have not exited yet. cluster.workers alone is not that: node:cluster
 * drops a worker from it only once it has both exited and disconnected its IPC channel, and the
 * 'exit' event can come before the 'disconnect'.
 */
function currentWorkers(): Worker[] {
  return Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && !w.isDead());
}

function runPrimary<S extends RunnableService>(o: RunServiceOptions<S>): Promise<void> {
  const log = o.logger.child({ role: 'primary' });
  // Not an AggregatorRegistry here: its primary-side listener would take our collector's answers.
  const collector = new ClusterMetricsCollector();
  const budget = o.restartBudgetPerMinute ?? 5;
  const restarts: number[] = [];
  let started = false;
  let stopping = false;

  return new Promise<void>((resolveStarted, rejectStarted) => {
    let ready = 0;
    const fork = (): Worker => {
      const w = cluster.fork();
      w.on('message', (m: FromWorker) => {
        if (collector.onWorkerMessage(w, m)) return;
        if (m?.type === 'brski:ready') {
          log.info({ worker: w.id, workerPid: w.process.pid, ...m.facts }, `${o.name} worker ready`);
          if (!started && ++ready === o.workers) {
            started = true;
            log.info({ workers: o.workers }, `${o.name} serving with ${o.workers} workers`);
            resolveStarted();
          }
        } else if (m?.type === 'brski:start-failed' && !started) {
          // A start failure (config, keys, store) is the same in every worker: give up at once.
          process.exitCode = 1;
          stopAll();
          rejectStarted(new Error(m.message));
        } else if (m?.type === 'brski:metrics-req') {
          collector.text(currentWorkers()).then(
            (text) => w.send({ type: 'brski:metrics-res', id: m.id, text } satisfies ToWorker),
            (e: unknown) => w.send({ type: 'brski:metrics-res', id: m.id, error: e instanceof Error ? e.message : String(e) } satisfies ToWorker));
        }
      });
      return w;
    };

    cluster.on('exit', (w, code, signal) => {
      collector.retire(w.id);
      if (stopping) {
        if (currentWorkers().length === 0) {
          log.info(`${o.name} stopped`);
          process.exit(process.exitCode ?? 0);
        }
        return;
      }
      if (!started) return; // the start-failed path (or an early crash, reported by the next line)
      const now = Date.now();
      while (restarts.length && restarts[0]! < now - 60_000) restarts.shift();
      if (restarts.length >= budget) {
        log.error({ worker: w.id, code, signal, restartsLastMinute: restarts.length }, `${o.name} workers keep dying; giving up`);
        process.exitCode = 1;
        stopAll();
        return;
      }
      restarts.push(now);
      const delay = Math.min(5_000, 250 * 2 ** (restarts.length - 1));
      log.error({ worker: w.id, workerPid: w.process.pid, code, signal, replaceInMs: delay }, `${o.name} worker died; replacing it`);
      // Not unref'd: when every worker is down, this timer is what keeps the primary alive.
      setTimeout(() => { if (!stopping) fork(); }, delay);
    });

    const stopAll = (): void => {
      if (stopping) return;
      stopping = true;
      const workers = currentWorkers();
      if (workers.length === 0) { process.exit(process.exitCode ?? 0); return; }
      for (const w of workers) {
        if (w.isConnected()) w.send({ type: 'brski:stop' } satisfies ToWorker);
      }
      setTimeout(() => {
        log.error(`${o.name} workers did not stop in time; killing them`);
        for (const w of currentWorkers()) w.process.kill('SIGKILL');
        process.exit(1);
      }, o.stopTimeoutMs ?? 15_000).unref();
    };
    onStopSignal((signal) => { log.info({ signal }, 'shutting down'); stopAll(); });

    // An early crash before every worker is ready (not a reported start failure) also fails the start.
    cluster.on('exit', (w, code, signal) => {
      if (!started && !stopping) {
        process.exitCode = 1;
        stopAll();
        rejectStarted(new Error(`${o.name} worker ${w.id} exited during start (code ${code}, signal ${signal})`));
      }
    });
    for (let i = 0; i < o.workers; i++) fork();
  });
}
