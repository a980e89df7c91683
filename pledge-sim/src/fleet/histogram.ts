/** Latency summary for one phase. Exact percentiles over the recorded samples (fleets are small enough to keep them all). */
export interface LatencyStats { count: number; p50: number; p90: number; p99: number; max: number; mean: number }

export class Histogram {
  readonly #samples: number[] = [];

  record(ms: number): void {
    if (Number.isFinite(ms) && ms >= 0) this.#samples.push(ms);
  }

  get count(): number { return this.#samples.length; }

  /** Nearest-rank percentile (q in 0..100). */
  percentile(q: number, sorted = [...this.#samples].sort((a, b) => a - b)): number {
    if (sorted.length === 0) return 0;
    const rank = Math.max(1, Math.ceil((q / 100) * sorted.length));
    return sorted[Math.min(rank, sorted.length) - 1]!;
  }

  stats(): LatencyStats {
    const sorted = [...this.#samples].sort((a, b) => a - b);
    const sum = sorted.reduce((a, b) => a + b, 0);
    return {
      count: sorted.length,
      p50: this.percentile(50, sorted), p90: this.percentile(90, sorted), p99: this.percentile(99, sorted),
      max: sorted.at(-1) ?? 0, mean: sorted.length ? sum / sorted.length : 0,
    };
  }
}
