/**
 * cBRSKI test world: the registrar fixture (demo PKI), the registrar's test MASA, a registrar
 * and its CoAPS listener on a free UDP port. Builds the DTLS addon first if needed.
 */
import type { RegistrarConfig } from '../../src/config.ts';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createCoapsServer, type CoapsServer } from '../../src/coap/server.ts';
import { registrarServices } from '../../src/coap/services.ts';
import { createRegistrar, type Registrar } from '../../src/server.ts';
import type { DtlsServerOptions } from '../../src/coap/dtls-server.ts';
import { makeFixture, type Fixture, type TestPledge } from '../helpers/fixture.ts';
import { startTestMasa, type TestMasa } from '../helpers/test-masa.ts';

export function ensureDtlsAddon(): void {
  execFileSync(process.execPath, [fileURLToPath(new URL('../../native/dtls/build.mjs', import.meta.url))], { stdio: 'inherit' });
}

export interface CoapsWorld {
  fx: Fixture;
  masa: TestMasa;
  reg: Registrar;
  coaps: CoapsServer;
  port: number;
  /** IDevID + issuing CA, PEM, as a pledge presents it in DTLS. */
  chainPem(p: TestPledge): string;
  /** Files for coap-client: { cert, key, ca } paths. */
  files(p: TestPledge): { cert: string; key: string };
  /** Another CoAPS listener on the same registrar with other DTLS settings (stopped by stop()). */
  extraListener(dtls: Partial<DtlsServerOptions>): Promise<{ server: CoapsServer; port: number }>;
  stop(): Promise<void>;
}

export async function startCoapsWorld(o: { devices?: number; dtls?: Partial<DtlsServerOptions>; overrides?: (c: RegistrarConfig) => void } = {}): Promise<CoapsWorld> {
  ensureDtlsAddon();
  const fx = await makeFixture({ devices: o.devices ?? 4, ...(o.overrides ? { overrides: o.overrides } : {}) });
  const masa = await startTestMasa(fx);
  const reg = createRegistrar(fx.config);
  await reg.start();
  const logger = pino({ level: process.env['COAPS_TEST_LOG'] ?? 'silent' });
  const services = registrarServices({
    vouchers: reg.vouchers, store: reg.store, ca: reg.ca, manufacturers: reg.material.manufacturers,
    voucherWindowSeconds: reg.config.enroll.voucherWindowSeconds, logger, now: () => new Date(), audit: reg.auditPolicy,
  });
  const coaps = createCoapsServer({
    dtls: { certChain: reg.material.tlsCertPem, key: reg.material.tlsKeyPem, ...o.dtls },
    services, logger, bodyBytes: reg.config.limits.bodyBytes,
  });
  const { port } = await coaps.listen(0, '127.0.0.1');
  const idevidCa = fx.pem('idevid-ca.pem');
  const extras: CoapsServer[] = [];
  return {
    fx, masa, reg, coaps, port,
    chainPem: (p) => p.certPem + idevidCa,
    files(p) {
      const cert = join(fx.dir, `${p.serial}-chain.pem`);
      writeFileSync(cert, p.certPem + idevidCa);
      return { cert, key: p.keyFile };
    },
    async extraListener(dtls) {
      const server = createCoapsServer({
        dtls: { certChain: reg.material.tlsCertPem, key: reg.material.tlsKeyPem, ...dtls }, services, logger, bodyBytes: reg.config.limits.bodyBytes,
      });
      extras.push(server);
      return { server, port: (await server.listen(0, '127.0.0.1')).port };
    },
    async stop() {
      for (const e of extras) await e.close();
      await coaps.close();
      await reg.stop();
      await masa.stop();
    },
  };
}
