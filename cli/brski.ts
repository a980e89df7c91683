/**
 * `brski` — one command, many subcommands. Each file in ./commands exports
 * `register(program: Command): void`, so every package adds its own subcommands
 * without this file knowing them.
 */
import { Command } from 'commander';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const program = new Command('brski')
  .description('BRSKI zero-touch onboarding stack: PKI, vouchers, MASA, registrar, pledges')
  .showHelpAfterError();

const commandDir = join(here, 'commands');
for (const file of readdirSync(commandDir).filter((f) => f.endsWith('.ts')).sort()) {
  const mod = (await import(pathToFileURL(join(commandDir, file)).href)) as { register?: (p: Command) => void };
  mod.register?.(program);
}

await program.parseAsync(process.argv);
