/**
 * Test world for the console: the registrar from its own test fixture (demo PKI, test MASA),
 * started with createRegistrar, and the console on an admin-style HTTPS listener. Until
 * registrar/src/server.ts mounts the console on the admin listener, the harness builds that
 * listener itself with the same app builder, the same store/CA instances and the same
 * dependencies server.ts would pass; once mounted, it uses the registrar's own admin listener.
 */
import type https from 'node:https';
import { createLogger } from '@brski/shared/observability/logger';
import { createMetrics } from '@brski/shared/observability/metrics';
import { HealthChecks } from '@brski/shared/http/health';
import { closeGracefully, createTlsServer, listen } from '@brski/shared/http/server';
import { buildApp } from '../../src/app.ts';
import { adminRoutes } from '../../src/admin/routes.ts';
import { AuditLogService } from '../../src/admin/audit.ts';
import { MasaClient } from '../../src/masa-client/client.ts';
import { createRegistrar, type Registrar } from '../../src/server.ts';
import type { RegistrarConfig } from '../../src/config.ts';
import { consoleRoutes } from '../../src/console/routes.ts';
import { makeFixture, type Fixture } from '../helpers/fixture.ts';
import { request } from '../helpers/client.ts';
import { startTestMasa, type TestMasa } from '../helpers/test-masa.ts';

export interface ConsoleWorld {
  fx: Fixture;
  masa: TestMasa;
  reg: Registrar;
  /** https://127.0.0.1:port of the listener serving /console. */
  consoleUrl: string;
  /** Whether server.ts already mounts the console (else the harness listener is used). */
  mountedByServer: boolean;
  stop(): Promise<void>;
}

export async function startConsoleWorld(opts: { devices: number; overrides?: (c: RegistrarConfig) => void }): Promise<ConsoleWorld> {
  const fx = await makeFixture({ devices: opts.devices, ...(opts.overrides ? { overrides: opts.overrides } : {}) });
  const masa = await startTestMasa(fx);
  const reg = createRegistrar(fx.config);
  await reg.start();

  const probe = await request(`${reg.adminUrl}/console/login`);
  if (probe.status === 200 && probe.body.toString().includes('Operator login')) {
    return { fx, masa, reg, consoleUrl: reg.adminUrl, mountedByServer: true, async stop() { await reg.stop(); await masa.stop(); } };
  }

  const cfg = reg.config;
  const m = reg.material;
  const logger = createLogger({ name: 'registrar-console-test', level: 'silent' });
  const masaClient = new MasaClient({ clientKey: m.tlsKeyPem, clientCert: m.tlsCertPem, timeoutMs: cfg.masa.timeoutMs, attempts: cfg.masa.attempts });
  const pinnable = [...m.tlsChain, ...m.caCertificates];
  const audit = new AuditLogService({ store: reg.store, masa: masaClient, manufacturers: m.manufacturers, pinnable, logger });
  const now = () => new Date();
  const app = buildApp([
    adminRoutes({ token: cfg.admin.token, store: reg.store, ca: reg.ca, audit, now, policy: reg.admission }),
    consoleRoutes({
      token: cfg.admin.token, store: reg.store, ca: reg.ca, audit, policy: cfg.policy, admission: reg.admission, now, domain: cfg.domain,
      manufacturers: m.manufacturers, masaClient: { key: m.tlsKeyPem, cert: m.tlsCertPem }, logger,
    }),
  ], { logger, metrics: createMetrics('registrar-console-test', { processMetrics: false }), health: new HealthChecks(), withMetrics: false });
  const server: https.Server = createTlsServer(app, { key: m.tlsKeyPem, cert: m.tlsCertPem, requestCert: false });
  const port = await listen(server, 0, '127.0.0.1');
  return {
    fx, masa, reg, consoleUrl: `https://127.0.0.1:${port}`, mountedByServer: false,
    async stop() {
      await closeGracefully(server, 1000);
      masaClient.close();
      await reg.stop();
      await masa.stop();
    },
  };
}
