/**
 * createMasa(config): wires the store, signer, authority, factory and admin API into the koa app
 * on a TLS server that requests client certificates (the app decides what to accept).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type https from 'node:https';
import type Koa from 'koa';
import { parseCertificatesPem } from '@brski/shared/crypto/software-signer';
import type { Signer } from '@brski/shared/crypto/signer';
import { closeGracefully, createTlsServer, listen } from '@brski/shared/http/server';
import { createLogger, type Logger } from '@brski/shared/observability/logger';
import { createMetrics, type Metrics } from '@brski/shared/observability/metrics';
import { createRedisClient, guardRedisStore, waitForRedis, type RedisClient } from '@brski/shared/store/redis';
import { AdminService } from './admin/service.ts';
import { createAdminApp, createMasaApp } from './app.ts';
import { VoucherAuthority, type AuthorityConfig } from './authority/authority.ts';
import { factoryEnabled, idevidCaConfig, type MasaConfig, type SigningKeyConfig } from './config.ts';
import { FactoryIssuer } from './factory/issuer.ts';
import { MemoryMasaStore } from './store/memory.ts';
import { signingKey, type PendingSigner } from './signers.ts';
import { RedisMasaStore } from './store/redis.ts';
import type { MasaStore } from './store/types.ts';

export interface MasaDeps {
  /** Use this store instead of the configured one (tests; the caller closes it). */
  store?: MasaStore;
  logger?: Logger;
  metrics?: Metrics;
  /** Voucher signer instead of the configured `signer` section (already opened). */
  signer?: Signer;
  now?: () => Date;
}

export interface Masa {
  app: Koa;
  server: https.Server;
  store: MasaStore;
  authority: VoucherAuthority;
  logger: Logger;
  metrics: Metrics;
  admin: AdminService;
  /** Bound ports (after start). */
  readonly port: number;
  readonly url: string;
  readonly adminPort: number;
  /** Undefined when no admin section is configured. */
  readonly adminUrl: string | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function pemCerts(paths: string | readonly string[] | undefined): ReturnType<typeof parseCertificatesPem> {
  const list = paths === undefined ? [] : typeof paths === 'string' ? [paths] : paths;
  return list.flatMap((path) => {
    const certs = parseCertificatesPem(readFileSync(path, 'utf8'));
    if (certs.length === 0) throw new Error(`${path}: no PEM certificates`);
    return certs;
  });
}

export function authorityConfigFrom(c: MasaConfig): AuthorityConfig {
  return {
    idevidAnchors: pemCerts(c.idevid.anchorFiles),
    registrarAnchors: pemCerts(c.registrars.anchorFiles),
    requireKnownRegistrar: c.registrars.requireKnown,
    proximity: c.voucher.proximity,
    maxBytes: c.voucher.maxRequestBytes,
    formats: c.voucher.formats,
    pin: c.voucher.pin,
    includeIdevidIssuer: c.voucher.includeIdevidIssuer,
    noncelessLifetimeSeconds: c.voucher.noncelessLifetimeSeconds,
    nonceTtlSeconds: c.voucher.nonceTtlSeconds,
    defaultPolicy: c.ownership.defaultPolicy,
    productLines: c.ownership.productLines,
    autoRegister: c.autoRegister,
    auditLogMaxEvents: c.auditLog.maxEvents,
    freshness: { maxRvrAgeSeconds: c.voucher.maxRvrAgeSeconds, maxRvrFutureSkewSeconds: c.voucher.maxRvrFutureSkewSeconds },
    revocation: c.revocation,
    rpkPin: c.voucher.rpkPin,
  };
}

export function createMasa(config: MasaConfig, deps: MasaDeps = {}): Masa {
  const logger = deps.logger ?? createLogger({ name: 'masa', level: config.log.level });
  const metrics = deps.metrics ?? createMetrics('masa');
  let store = deps.store;
  let ownsStore = false;
  let redisClient: RedisClient | undefined;
  if (!store) {
    ownsStore = true;
    if (config.store.type === 'redis') {
      const cfg = config.store.redis ?? { mode: 'single' as const, url: config.store.url! };
      redisClient = createRedisClient({ ...cfg, keyPrefix: config.store.prefix });
      store = guardRedisStore(new RedisMasaStore(redisClient, true));
    } else {
      store = new MemoryMasaStore();
    }
  }
  // PEM keys load here; PKCS#11 keys (pending) are opened by start() before anything listens.
  const pending: PendingSigner[] = [];
  const keyFor = (configKey: string, section: SigningKeyConfig): ReturnType<typeof signingKey> => {
    const k = signingKey(configKey, section);
    if (k.pending) pending.push(k.pending);
    return k;
  };
  const signer = deps.signer ?? keyFor('signer', config.signer).signer;
  const authorityConfig = authorityConfigFrom(config);
  const authority = new VoucherAuthority({ store, signer, config: authorityConfig, logger, metrics,
    ...(deps.now ? { now: deps.now } : {}) });

  let factory: FactoryIssuer | undefined;
  const masaUrl = config.masaUrl ?? `localhost:${config.listen.port}`;
  if (factoryEnabled(config)) {
    const { signer: caSigner, certificate: caCertificate } = keyFor(config.idevid.ca ? 'idevid.ca' : 'idevid.caKeyFile', idevidCaConfig(config)!);
    factory = new FactoryIssuer({
      mode: config.mode, stationAnchors: pemCerts(config.factory.stationAnchorFiles), testAnchors: pemCerts(config.factory.testAnchorFiles),
      caSigner, caCertificate, masaUrl, rateLimit: config.factory.rateLimit, stations: config.factory.stations,
      defaultProductLine: config.factory.productLine, validityDays: config.idevid.validityDays,
    }, store, logger, metrics, deps.now);
  }
  const adminService = new AdminService(store, authorityConfig.idevidAnchors, logger);

  const app = createMasaApp({ authority, store, logger, metrics, limits: config.limits, ...(factory ? { factory } : {}) });
  const tlsKey = readFileSync(config.tls.keyFile);
  const tlsCert = Buffer.concat([config.tls.certFile, ...config.tls.chainFiles].map((f) => readFileSync(f)));
  const clientCa = config.tls.clientCaFiles.length ? config.tls.clientCaFiles.map((f) => readFileSync(f)) : undefined;
  const server = createTlsServer(app, {
    key: tlsKey, cert: tlsCert, ...(clientCa ? { ca: clientCa } : {}),
    requestCert: true, requestTimeoutMs: config.limits.requestTimeoutMs, headersTimeoutMs: config.limits.headersTimeoutMs,
    keepAliveTimeoutMs: config.limits.keepAliveTimeoutMs,
  });
  const adminCfg = config.admin;
  const adminServer = adminCfg ? createTlsServer(createAdminApp(adminService, adminCfg.token, store, logger, metrics),
    { key: tlsKey, cert: tlsCert, requestCert: false }) : undefined;

  let port = 0;
  let adminPort = 0;
  const s = store;
  const hostFor = (h: string): string => (h.includes(':') ? `[${h}]` : h);
  return {
    app, server, store: s, authority, admin: adminService, logger, metrics,
    get port() { return port; },
    get url() { return `https://${hostFor(config.listen.host)}:${port}`; },
    get adminPort() { return adminPort; },
    get adminUrl() { return adminCfg ? `https://${hostFor(adminCfg.host)}:${adminPort}` : undefined; },
    async start() {
      // Token keys first: a missing token, wrong PIN or wrong label must stop the start (fail closed).
      for (const p of pending) await p.open();
      // The client connects asynchronously and fails fast while offline: wait for it before the first ping.
      if (redisClient) await waitForRedis(redisClient);
      if (!(await s.ping())) throw new Error(`${s.kind} store not reachable`); // fail fast, not on the first voucher
      if (config.factory.seedFile) await seedDevices(adminService, config.factory.seedFile, config.factory.productLine, logger);
      port = await listen(server, config.listen.port, config.listen.host);
      if (adminServer && adminCfg) adminPort = await listen(adminServer, adminCfg.port, adminCfg.host);
      logger.info({ url: `https://${config.listen.host}:${port}`, adminPort: adminCfg ? adminPort : null, store: s.kind, mode: config.mode,
        factory: !!factory, formats: config.voucher.formats }, 'MASA listening');
    },
    async stop() {
      await Promise.all([closeGracefully(server), adminServer ? closeGracefully(adminServer) : undefined]);
      if (ownsStore) await s.close();
      logger.info('MASA stopped');
    },
  };
}


/** Registers the devices of a seed file (docs/design/config.md `devices.json`); idempotent. */
async function seedDevices(admin: AdminService, file: string, productLine: string, logger: Logger): Promise<void> {
  const list = JSON.parse(readFileSync(file, 'utf8')) as Array<{ serial: string; cert: string }>;
  if (!Array.isArray(list)) throw new Error(`${file}: expected a JSON array of {serial, cert}`);
  let created = 0;
  for (const d of list) {
    const pem = readFileSync(resolve(dirname(file), d.cert), 'utf8');
    const cert = parseCertificatesPem(pem)[0];
    if (!cert) throw new Error(`${d.cert}: no certificate`);
    const r = await admin.importDevice(d.serial, Buffer.from(cert.raw).toString('base64'), productLine, 'seed', undefined, true);
    if (r.status === 'created') created++;
  }
  logger.info({ file, devices: list.length, created }, 'device seed loaded');
}
