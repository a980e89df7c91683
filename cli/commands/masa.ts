/** `brski masa --config masa.yaml`: runs the MASA until SIGTERM/SIGINT, then shuts down gracefully. */
import type { Command } from 'commander';
import { loadMasaConfig } from '../../masa/src/config.ts';
import { createMasa } from '../../masa/src/server.ts';

export function register(program: Command): void {
  program.command('masa')
    .description('run the MASA (manufacturer voucher authority) service')
    .requiredOption('-c, --config <file>', 'masa.yaml (layout: docs/design/config.md; env overrides BRSKI_MASA__…)')
    .action(async (opts: { config: string }) => {
      let masa;
      try {
        masa = createMasa(loadMasaConfig(opts.config));
        await masa.start();
      } catch (err) {
        // Config errors name the bad key; never print a stack for them.
        process.stderr.write(`brski masa: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 1;
        return;
      }
      const m = masa;
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        m.logger.info({ signal }, 'shutting down');
        m.stop().then(() => process.exit(0), (err: unknown) => {
          m.logger.error({ err }, 'shutdown failed');
          process.exit(1);
        });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
}
