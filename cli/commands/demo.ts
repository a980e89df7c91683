/** `brski demo`: the same one-command demo as `npm run demo` (implementation in cli/demo.ts). */
import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('demo')
    .description('generate a PKI, start MASA + registrar in-process, manufacture and onboard pledges, print the summary')
    .option('--count <n>', 'pledges to onboard', '200')
    .option('--concurrency <n>', 'pledges in flight at once', '32')
    .option('--format <fmt>', 'jws|cms|cose|mixed', 'mixed')
    .option('--redis <url>', 'use Redis stores (redis://host:port) instead of memory')
    .option('--dir <path>', 'output directory (default: a new temporary directory)')
    .option('--no-factory', 'use pre-made pledges from the PKI directory instead of the MASA factory endpoint')
    .option('--json', 'print the report as JSON')
    .option('--log-level <level>', 'service log level (default error)')
    .action(async (o: { count: string; concurrency: string; format: string; redis?: string; dir?: string; factory: boolean; json?: boolean; logLevel?: string }) => {
      // Loaded lazily: only this command pulls in the MASA and registrar modules.
      const { runDemo, parseDemoArgs } = await import('../demo.ts');
      const argv = ['--count', o.count, '--concurrency', o.concurrency, '--format', o.format,
        ...(o.redis ? ['--redis', o.redis] : []), ...(o.dir ? ['--dir', o.dir] : []), ...(o.factory ? [] : ['--no-factory']),
        ...(o.json ? ['--json'] : []), ...(o.logLevel ? ['--log-level', o.logLevel] : [])];
      const { report } = await runDemo(parseDemoArgs(argv));
      process.exitCode = report.failed === 0 ? 0 : 1;
    });
}
