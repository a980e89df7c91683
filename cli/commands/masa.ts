/**
 * `brski masa --config masa.yaml [--workers N]`: runs the MASA until SIGTERM/SIGINT, then shuts
 * down gracefully. With more than one worker (listen.workers, Redis store only) the processes
 * share the port; see shared/src/process/cluster.ts.
 */
import type { Command } from 'commander';
import { createLogger } from '../../shared/src/observability/logger.ts';
import { createMetrics } from '../../shared/src/observability/metrics.ts';
import { runService, withClusterMetrics } from '../../shared/src/process/cluster.ts';
import { loadMasaConfig, type MasaConfig } from '../../masa/src/config.ts';
import { createMasa } from '../../masa/src/server.ts';

export function register(program: Command): void {
  program.command('masa')
    .description('run the MASA (manufacturer voucher authority) service')
    .requiredOption('-c, --config <file>', 'masa.yaml (layout: docs/design/config.md; env overrides BRSKI_MASA__…)')
    .option('-w, --workers <n>', 'processes serving the port (overrides listen.workers; > 1 needs the Redis store)')
    .action(async (opts: { config: string; workers?: string }) => {
      try {
        const config = withWorkers(loadMasaConfig(opts.config), opts.workers);
        await runService({
          name: 'masa', workers: config.listen.workers,
          logger: createLogger({ name: 'masa', level: config.log.level }),
          async start({ clusterMetrics }) {
            const masa = createMasa(config, clusterMetrics ? { metrics: withClusterMetrics(createMetrics('masa'), clusterMetrics) } : {});
            await masa.start();
            return masa;
          },
          describe: (m) => ({ url: m.url }),
        });
      } catch (err) {
        // Config errors name the bad key; never print a stack for them.
        process.stderr.write(`brski masa: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 1;
      }
    });
}

function withWorkers(config: MasaConfig, flag: string | undefined): MasaConfig {
  if (flag === undefined) return config;
  const workers = Number(flag);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new Error(`--workers: expected an integer 1–64, got ${JSON.stringify(flag)}`);
  if (workers > 1 && config.store.type !== 'redis') throw new Error('--workers: more than 1 worker needs store.type redis');
  return { ...config, listen: { ...config.listen, workers } };
}
