/** Live progress: a cli-progress bar on a TTY, a plain line every 10 % otherwise (logs, CI). */
import cliProgress from 'cli-progress';

export interface Progress { update(done: number, ok: number, failed: number): void; stop(): void }

export function createProgress(total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar({
      stream, format: 'onboarding [{bar}] {value}/{total} | ok {ok} | failed {failed} | {rate}/s | eta {eta}s',
      hideCursor: true, clearOnComplete: false,
    }, cliProgress.Presets.shades_classic);
    const t0 = performance.now();
    bar.start(total, 0, { ok: 0, failed: 0, rate: '0' });
    return {
      update(done, ok, failed) { bar.update(done, { ok, failed, rate: (ok / Math.max(0.001, (performance.now() - t0) / 1000)).toFixed(0) }); },
      stop() { bar.stop(); },
    };
  }
  let lastDecile = -1;
  return {
    update(done, ok, failed) {
      const decile = total === 0 ? 10 : Math.floor((done / total) * 10);
      if (decile !== lastDecile) { lastDecile = decile; stream.write(`progress ${done}/${total} ok=${ok} failed=${failed}\n`); }
    },
    stop() { /* nothing to clean up */ },
  };
}
