/**
 * createRegistrar(config): wires store, domain CA, MASA client, authority and routes, and runs
 * the pledge-facing HTTPS listener (client certificates requested, verified in the app) and
 * the admin HTTPS listener.
 */
import type https from 'node:https';
import type { Logger } from 'pino';
import { closeGracefully, createTlsServer, listen } from '@brski/shared/http/server';
import { HealthChecks } from '@brski/shared/http/health';
import { createLogger } from '@brski/shared/observability/logger';
import { createMetrics, type Metrics } from '@brski/shared/observability/metrics';
import { createRedisClient, guardRedisStore, waitForRedis, type RedisClient } from '@brski/shared/store/redis';
import { startRegistrarAnnouncement, type RegistrarAnnouncement } from '@brski/shared/discovery/registrar-announcer';
import { AdmissionPolicy } from './authority/admission.ts';
import type { RegistrarIdentity } from './authority/identity.ts';
import { VoucherService } from './authority/voucher-service.ts';
import { DomainCa } from './ca/domain-ca.ts';
import { parseRegistrarConfig, type RegistrarConfig, type RegistrarConfigInput } from './config.ts';
import { MasaClient } from './masa-client/client.ts';
import { loadMaterial, openMaterialKeys, type RegistrarMaterial } from './material.ts';
import { MemoryRegistrarStore } from './store/memory.ts';
import { RedisRegistrarStore } from './store/redis.ts';
import type { RegistrarStore } from './store/types.ts';
import type { CoapsServer } from './coap/server.ts';
import { buildApp } from './app.ts';
import { brskiRoutes } from './routes/brski.ts';
import { estRoutes } from './routes/est.ts';
import { adminRoutes } from './admin/routes.ts';
import { AuditLogService } from './admin/audit.ts';
import { AuditPolicyService } from './authority/audit-policy.ts';
import { adminAuditRoutes } from './routes/admin-audit.ts';
import { consoleRoutes } from './console/routes.ts';

export interface RegistrarDeps {
  store?: RegistrarStore;
  material?: RegistrarMaterial;
  logger?: Logger;
  metrics?: Metrics;
  now?: () => Date;
}

export interface Registrar {
  readonly config: RegistrarConfig;
  readonly store: RegistrarStore;
  readonly ca: DomainCa;
  readonly vouchers: VoucherService;
  /** The one admission policy: voucher service, admin API and console all hold this object. */
  readonly admission: AdmissionPolicy;
  /** The one audit-log policy: HTTPS BRSKI/EST routes, CoAPS services and admin audit endpoints all hold this object. */
  readonly auditPolicy: AuditPolicyService;
  readonly material: RegistrarMaterial;
  readonly logger: Logger;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Bound ports/URLs, valid after start(). */
  readonly port: number;
  readonly url: string;
  readonly adminPort: number;
  /** Bound UDP port of the CoAPS listener (0 when disabled). */
  readonly coapsPort: number;
  readonly adminUrl: string;
}

function storeFor(cfg: RegistrarConfig): { store: RegistrarStore; redis?: RedisClient } {
  if (cfg.store.type === 'memory') return { store: new MemoryRegistrarStore() };
  // Shared client factory: fail fast while Redis is away (503 to the pledge) instead of queueing
  // commands, so a retried write is never replayed behind the caller's back.
  const redis = createRedisClient(cfg.store.redis ?? { mode: 'single', url: cfg.store.url! });
  return { store: guardRedisStore(new RedisRegistrarStore(redis, { domain: cfg.domain, prefix: cfg.store.prefix })), redis };
}

export function createRegistrar(input: RegistrarConfig | RegistrarConfigInput, deps: RegistrarDeps = {}): Registrar {
  const config = parseRegistrarConfig(input);
  const logger = deps.logger ?? createLogger({ name: 'registrar', level: config.log.level });
  const metrics = deps.metrics ?? createMetrics('registrar');
  const now = deps.now ?? (() => new Date());
  const material = deps.material ?? loadMaterial(config);
  if (config.masa.domainCertRevocationChecks !== undefined) {
    logger.warn('masa.domainCertRevocationChecks is deprecated and has no effect: a voucher-request never carries that leaf');
  }
  const built = deps.store ? { store: deps.store } : storeFor(config);
  const store = built.store;

  const registrar: RegistrarIdentity = {
    tlsCertificates: [material.tlsChain[0]!],
    pinnable: dedupe([...material.tlsChain, ...material.caCertificates]),
  };
  const registrarChain = material.tlsChain;
  const masa = new MasaClient({ clientKey: material.tlsKeyPem, clientCert: material.tlsCertPem, timeoutMs: config.masa.timeoutMs, attempts: config.masa.attempts });
  const ca = new DomainCa({
    signer: material.caSigner, certificate: material.caCertificate, caCertificates: material.caCertificates, store,
    profile: { ...config.enroll, ...(config.enroll.sanDns ? { sanDns: config.enroll.sanDns } : {}) }, crlLifetimeHours: config.crl.lifetimeHours, now,
    ...(config.crl.distributionUrl ? { crlDistributionUrl: config.crl.distributionUrl } : {}),
    reenrollGuard: (pledge) => auditPolicy.assertNotBlocked(pledge),
  });
  // One of each policy per registrar, passed explicitly to every consumer below (HTTPS routes,
  // admin API, console, CoAPS services), so an operator's change is enforced on every transport.
  const policy = new AdmissionPolicy(config.policy, store);
  const vouchers = new VoucherService({
    store, policy, masa, signer: material.rvrSigner, registrar, registrarChain, manufacturers: material.manufacturers, logger, metrics, now,
    config: { ...config.masa, maxBytes: config.limits.bodyBytes },
  });
  const audit = new AuditLogService({ store, masa, manufacturers: material.manufacturers, pinnable: registrar.pinnable, logger });
  const auditPolicy = new AuditPolicyService({ config: config.auditPolicy, store, audit, logger, now });

  const health = new HealthChecks().add('store', () => store.revocationVersion());
  const app = buildApp([
    brskiRoutes({ vouchers, store, ca, manufacturers: material.manufacturers, bodyLimit: config.limits.bodyBytes, logger, now, audit: auditPolicy }),
    estRoutes({ ca, store, manufacturers: material.manufacturers, voucherWindowSeconds: config.enroll.voucherWindowSeconds, bodyLimit: config.limits.bodyBytes, now, audit: auditPolicy }),
  ], { logger, metrics, health, withMetrics: false });
  const adminApp = buildApp([
    adminRoutes({ token: config.admin.token, store, ca, audit, now, policy }),
    adminAuditRoutes({ token: config.admin.token, store, policy: auditPolicy }),
    // Operator console (/console) over the same store, CA and audit service as the admin API.
    consoleRoutes({ token: config.admin.token, store, ca, audit, policy: config.policy, admission: policy, now, domain: config.domain,
      manufacturers: material.manufacturers, masaClient: { key: material.tlsKeyPem, cert: material.tlsCertPem }, logger }),
  ], { logger, metrics, health, withMetrics: true });

  let server: https.Server | undefined;
  let adminServer: https.Server | undefined;
  let coaps: CoapsServer | undefined;
  let coapsPort = 0;
  let announcement: RegistrarAnnouncement | undefined;
  let port = 0;
  let adminPort = 0;
  const hostFor = (h: string) => (h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h.includes(':') ? `[${h}]` : h);

  return {
    config, store, ca, vouchers, admission: policy, auditPolicy, material, logger,
    get port() { return port; },
    get url() { return `https://${hostFor(config.listen.host)}:${port}`; },
    get adminPort() { return adminPort; },
    get coapsPort() { return coapsPort; },
    get adminUrl() { return `https://${hostFor(config.admin.host)}:${adminPort}`; },
    async start() {
      await openMaterialKeys(material); // PKCS#11 domain CA key: fail closed before listening
      server = createTlsServer(app, {
        key: material.tlsKeyPem, cert: material.tlsCertPem, requestCert: true, requestTimeoutMs: config.limits.requestTimeoutMs,
        // Session resumption stays off (the shared server's default): a resumed session keeps only the
        // leaf of the client chain, and pledge intermediates are needed to validate IDevIDs.
      });
      server.on('tlsClientError', (err) => logger.debug({ err: err.message }, 'TLS handshake failed'));
      adminServer = createTlsServer(adminApp, { key: material.tlsKeyPem, cert: material.tlsCertPem, requestCert: false });
      if (built.redis) await waitForRedis(built.redis);
      port = await listen(server, config.listen.port, config.listen.host);
      adminPort = await listen(adminServer, config.admin.port, config.admin.host);
      // Warm the CRL so the first fetch does not pay for signing.
      await ca.crl();
      if (config.coaps.enabled) {
        // Loaded only when enabled: the CoAPS listener needs the native DTLS addon (docs/dtls.md).
        const { createCoapsServer } = await import('./coap/server.ts');
        const { registrarServices } = await import('./coap/services.ts');
        coaps = createCoapsServer({
          dtls: {
            certChain: material.tlsCertPem, key: material.tlsKeyPem, requireClientCert: config.coaps.requireClientCert,
            ...(config.coaps.maxSessions ? { maxSessions: config.coaps.maxSessions } : {}),
            ...(config.coaps.idleTimeoutMs ? { idleTimeoutMs: config.coaps.idleTimeoutMs } : {}),
          },
          services: registrarServices({
            vouchers, store, ca, manufacturers: material.manufacturers, voucherWindowSeconds: config.enroll.voucherWindowSeconds, logger, now,
            audit: auditPolicy,
          }),
          logger, bodyBytes: config.limits.bodyBytes,
        });
        coapsPort = (await coaps.listen(config.coaps.port, config.coaps.host)).port;
      }
      if (config.discovery.mdns) {
        announcement = startRegistrarAnnouncement({
          port, name: config.domain, asProxy: config.discovery.asProxy,
          ...(coaps ? { coapsPort } : {}), ...(config.discovery.interface ? { interface: config.discovery.interface } : {}),
        });
      }
      logger.info({ port, adminPort, coapsPort, domain: config.domain, policy: config.policy.mode, store: config.store.type }, 'registrar listening');
    },
    async stop() {
      await announcement?.stop();
      await vouchers.stop();
      await auditPolicy.stop();
      await Promise.all([server && closeGracefully(server), adminServer && closeGracefully(adminServer), coaps?.close()]);
      masa.close();
      if (!deps.store) await store.close();
      logger.info('registrar stopped');
    },
  };
}

function dedupe<T extends { fingerprint256: string }>(list: T[]): T[] {
  const seen = new Set<string>();
  return list.filter((c) => (seen.has(c.fingerprint256) ? false : (seen.add(c.fingerprint256), true)));
}
