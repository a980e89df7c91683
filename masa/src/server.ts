/**
 * createMasa(config): wires the store, signer, authority, factory and admin API into the koa app
 * on a TLS server that requests client certificates (the app decides what to accept).
 */
import { readFileSync } from 'node:fs';
import type https from 'node:https';
import type Koa from 'koa';
import { loadSoftwareSigner, parseCertificatesPem } from '@brski/shared/crypto/software-signer';
import type { Signer } from '@brski/shared/crypto/signer';
import { closeGracefully, createTlsServer, listen } from '@brski/shared/http/server';
import { createLogger, type Logger } from '@brski/shared/observability/logger';
import { createMetrics, type Metrics } from '@brski/shared/observability/metrics';
import { createRedisClient } from '@brski/shared/store/redis';
import { AdminService } from './admin/service.ts';
import { createMasaApp } from './app.ts';
import { VoucherAuthority, type AuthorityConfig } from './authority/authority.ts';
import type { MasaConfig } from './config.ts';
import { FactoryIssuer } from './factory/issuer.ts';
import { MemoryMasaStore } from './store/memory.ts';
import { RedisMasaStore } from './store/redis.ts';
import type { MasaStore } from './store/types.ts';

export interface MasaDeps {
  /** Use this store instead of the configured one (tests; the caller closes it). */
  store?: MasaStore;
  logger?: Logger;
  metrics?: Metrics;
  /** Voucher signer instead of signer.keyFile (e.g. a PKCS#11 key). */
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
  /** Bound port (after start). */
  readonly port: number;
  readonly url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function pemCerts(path: string | undefined): ReturnType<typeof parseCertificatesPem> {
  if (!path) return [];
  const certs = parseCertificatesPem(readFileSync(path, 'utf8'));
  if (certs.length === 0) throw new Error(`${path}: no PEM certificates`);
  return certs;
}

export function authorityConfigFrom(c: MasaConfig): AuthorityConfig {
  return {
    idevidAnchors: pemCerts(c.idevidCa.certFile),
    registrarAnchors: pemCerts(c.registrars.anchorsFile),
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
    autoRegister: c.ownership.autoRegister ? { productLine: c.ownership.defaultProductLine } : undefined,
    auditLogMaxEvents: c.auditLog.maxEvents,
  };
}

export function createMasa(config: MasaConfig, deps: MasaDeps = {}): Masa {
  const logger = deps.logger ?? createLogger({ name: 'masa', level: config.log.level });
  const metrics = deps.metrics ?? createMetrics('masa');
  let store = deps.store;
  let ownsStore = false;
  if (!store) {
    ownsStore = true;
    store = config.store.type === 'redis'
      ? new RedisMasaStore(createRedisClient(config.store.redis), true)
      : new MemoryMasaStore();
  }
  const signer = deps.signer ?? loadSoftwareSigner(config.signer.keyFile, [config.signer.certFile]);
  const authorityConfig = authorityConfigFrom(config);
  const authority = new VoucherAuthority({ store, signer, config: authorityConfig, logger, metrics,
    ...(deps.now ? { now: deps.now } : {}) });

  let factory: FactoryIssuer | undefined;
  if (config.factory.enabled) {
    const caSigner = loadSoftwareSigner(config.idevidCa.keyFile!, [config.idevidCa.certFile]);
    const caCertificate = caSigner.certificates.find((c) => c.publicKey.equals(caSigner.publicKey));
    if (!caCertificate) throw new Error('idevidCa.certFile holds no certificate for idevidCa.keyFile');
    factory = new FactoryIssuer({
      mode: config.mode, stationAnchors: pemCerts(config.factory.stationCaFile), testAnchors: pemCerts(config.factory.testCaFile),
      caSigner, caCertificate, masaUrl: config.masaUrl, rateLimit: config.factory.rateLimit, stations: config.factory.stations,
      defaultProductLine: config.ownership.defaultProductLine, validityDays: config.factory.validityDays,
    }, store, logger, metrics, deps.now);
  }
  const admin = config.admin.token
    ? { service: new AdminService(store, authorityConfig.idevidAnchors, logger), token: config.admin.token }
    : undefined;

  const app = createMasaApp({ authority, store, logger, metrics, limits: config.limits,
    ...(factory ? { factory } : {}), ...(admin ? { admin } : {}) });
  const clientCa = config.tls.clientCaFile ? readFileSync(config.tls.clientCaFile) : undefined;
  const server = createTlsServer(app, {
    key: readFileSync(config.tls.keyFile), cert: readFileSync(config.tls.certFile), ...(clientCa ? { ca: clientCa } : {}),
    requestCert: true, requestTimeoutMs: config.limits.requestTimeoutMs, headersTimeoutMs: config.limits.headersTimeoutMs,
    keepAliveTimeoutMs: config.limits.keepAliveTimeoutMs,
  });

  let port = 0;
  const s = store;
  return {
    app, server, store: s, authority, logger, metrics,
    get port() { return port; },
    get url() { return `https://${config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host}:${port}`; },
    async start() {
      if (s instanceof RedisMasaStore && ownsStore && config.store.type === 'redis') {
        // Fail fast at start rather than on the first voucher.
        if (!(await s.ping())) throw new Error('Redis store not reachable');
      }
      port = await listen(server, config.listen.port, config.listen.host);
      logger.info({ url: `https://${config.listen.host}:${port}`, store: s.kind, mode: config.mode, factory: !!factory, admin: !!admin,
        formats: config.voucher.formats }, 'MASA listening');
    },
    async stop() {
      await closeGracefully(server);
      if (ownsStore) await s.close();
      logger.info('MASA stopped');
    },
  };
}

