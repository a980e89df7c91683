/**
 * Runs one service in its own process for the e2e suite and the benchmark when the `brski masa` /
 * `brski registrar` commands are not available: loads the YAML with the service's own schema,
 * starts it, prints one JSON line {"ready":true,"port":N}, and stops cleanly on SIGTERM/SIGINT.
 * Usage: tsx test/e2e/helpers/service-main.ts masa|registrar <config.yaml>
 */
import { loadConfig } from '@brski/shared/config/load';
import { loadMasaConfig } from '../../../masa/src/config.ts';
import { createMasa } from '../../../masa/src/server.ts';
import { registrarConfigSchema } from '../../../registrar/src/config.ts';
import { createRegistrar } from '../../../registrar/src/server.ts';

const [kind, file] = process.argv.slice(2);
if ((kind !== 'masa' && kind !== 'registrar') || !file) {
  process.stderr.write('usage: service-main.ts masa|registrar <config.yaml>\n');
  process.exit(2);
}
const service = kind === 'masa'
  ? createMasa(loadMasaConfig(file))
  : createRegistrar(loadConfig(file, registrarConfigSchema, { envPrefix: 'BRSKI_REGISTRAR' }));
// The MASA pings its Redis store in start() right after creating the client, whose offline queue
// is off, so a start within the connect time fails; give the connection a few moments.
for (let attempt = 1; ; attempt++) {
  try {
    await service.start();
    break;
  } catch (e) {
    if (attempt >= 40 || !/store not reachable/.test((e as Error).message)) throw e;
    await new Promise((r) => setTimeout(r, 250));
  }
}
process.stdout.write(`${JSON.stringify({ ready: true, kind, port: service.port })}\n`);
let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  service.stop().then(() => process.exit(0), () => process.exit(1));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
