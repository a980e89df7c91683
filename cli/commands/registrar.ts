/** `brski registrar --config registrar.yaml`: runs the registrar until SIGTERM/SIGINT, then shuts down gracefully. */
import type { Command } from 'commander';
import { loadRegistrarConfig } from '../../registrar/src/config.ts';
import { createRegistrar, type Registrar } from '../../registrar/src/server.ts';

export function register(program: Command): void {
  program.command('registrar')
    .description('run the registrar (BRSKI voucher requests, admission policy, EST domain CA)')
    .requiredOption('-c, --config <file>', 'registrar.yaml (schema: registrar/src/config.ts; env overrides BRSKI_REGISTRAR__…)')
    .action(async (opts: { config: string }) => {
      let reg: Registrar;
      try {
        reg = createRegistrar(loadRegistrarConfig(opts.config));
        await reg.start();
      } catch (err) {
        // Config and key-file errors name the problem; no stack trace for them.
        process.stderr.write(`brski registrar: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(`registrar listening on ${reg.url} (admin ${reg.adminUrl})\n`);
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        reg.logger.info({ signal }, 'shutting down');
        reg.stop().then(() => process.exit(0), (err: unknown) => {
          reg.logger.error({ err }, 'shutdown failed');
          process.exit(1);
        });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
}
