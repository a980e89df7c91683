/**
 * masa.yaml: the zod schema (every key validated at start; errors name the key) and loading with
 * environment overrides (BRSKI_MASA__LISTEN__PORT=9443 …, see shared/src/config/load.ts).
 * Keys ending in File/Files hold paths relative to the config file; `admin.token_file` reads the
 * token from a file (container secrets). Layout contract: docs/design/config.md.
 */
import { z } from 'zod';
import { buildConfig, loadConfig } from '@brski/shared/config/load';
import { signingKeySchema, type SigningKeyConfig } from '@brski/shared/crypto/signing-key';
import { LOG_LEVELS } from '@brski/shared/observability/logger';
import { redisConfigSchema } from '@brski/shared/store/redis';
import { OWNERSHIP_POLICIES } from './store/types.ts';

export const ENV_PREFIX = 'BRSKI_MASA';

const policy = z.enum(OWNERSHIP_POLICIES as unknown as ['claimed', 'first-use', 'open']);
const path = z.string().min(1);

const files = z.array(path).default([]);
const rate = z.object({ max: z.number().int().min(1), windowSeconds: z.number().int().min(1) }).strict();


export { signingKeySchema, signerConfigOf, type SigningKeyConfig } from '@brski/shared/crypto/signing-key';

/** Layout contract: docs/design/config.md (written by `brski pki init`); extra keys here are MASA-specific. */
export const masaConfigSchema = z.object({
  /** production: test station credentials are refused. */
  mode: z.enum(['production', 'development']).default('production'),
  listen: z.object({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(9443),
    /** Processes serving this port (node:cluster); more than 1 needs the Redis store (shared state). */
    workers: z.number().int().min(1).max(64).default(1),
  }).strict().prefault({}),
  tls: z.object({
    certFile: path,
    keyFile: path,
    /** Sent after the leaf. */
    chainFiles: files,
    /** CA certificates named in the CertificateRequest (acceptance is decided by the app). */
    clientCaFiles: files,
  }).strict(),
  /** Voucher-signing key (PEM or PKCS#11); chainFiles are embedded in vouchers after the signer certificate. */
  signer: signingKeySchema,
  idevid: z.object({
    /** PVR signers (IDevIDs) must chain to one of these. */
    anchorFiles: z.array(path).min(1),
    /** IDevID-issuing CA (PEM key or PKCS#11): enables factory issuance (the key never leaves this backend / the token). */
    ca: signingKeySchema.optional(),
    /** Shorthand for `ca: { certFile, keyFile }` (PEM key only). */
    caCertFile: path.optional(),
    caKeyFile: path.optional(),
    /** IDevID lifetime for factory issuance; absent → no expiry (802.1AR). */
    validityDays: z.number().int().min(1).optional(),
  }).strict(),
  /** MASA URL extension content for new IDevIDs; default `localhost:<listen.port>`. */
  masaUrl: z.string().min(1).max(255).optional(),
  registrars: z.object({
    /** Known registrar CAs (a registrar chaining here is authenticated: nonceless vouchers for unclaimed devices). */
    anchorFiles: files,
    requireKnown: z.boolean().default(false),
  }).strict().prefault({}),
  voucher: z.object({
    formats: z.array(z.enum(['cms', 'jws', 'cose'])).min(1).default(['cms', 'jws', 'cose']),
    pin: z.enum(['domain-ca', 'issuing-ca', 'registrar']).default('domain-ca'),
    includeIdevidIssuer: z.boolean().default(false),
    noncelessLifetimeSeconds: z.number().int().min(60).max(366 * 86_400).default(1200),
    nonceTtlSeconds: z.number().int().min(60).default(90 * 86_400),
    proximity: z.enum(['exact', 'same-issuer']).default('exact'),
    maxRequestBytes: z.number().int().min(1024).max(1024 * 1024).default(64 * 1024),
    /** RVR created-on may be at most this old (absent created-on is accepted and logged: RFC 8995 registrars may omit it). */
    maxRvrAgeSeconds: z.number().int().min(1).default(300),
    /** …and at most this far ahead of the MASA clock. */
    maxRvrFutureSkewSeconds: z.number().int().min(0).default(60),
    /** pin: registrar and a cBRSKI PVR naming the registrar by key (proximity-registrar-pubk/-sha256) → pin the
     *  registrar's key (`pinned-domain-pubk`, digest §6.4 SHOULD); false: always pin the certificate. */
    rpkPin: z.boolean().default(true),
  }).strict().prefault({}),
  /** CRL checking of the registrar's RVR signing chain (digest §2.1(d)3): certificates with a CRL distribution point. */
  revocation: z.object({
    /** require: status unknown (CRL unreachable, invalid, stale; OCSP only) → 503; best-effort: logged and accepted. */
    mode: z.enum(['require', 'best-effort']).default('require'),
    fetchTimeoutMs: z.number().int().min(100).max(60_000).default(5_000),
    maxCrlBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024),
    /** Retry-After on the 503, and how long a failed CRL fetch is remembered. */
    retryAfterSeconds: z.number().int().min(1).max(3600).default(30),
    /** Cache lifetime of a CRL without nextUpdate (otherwise cached until nextUpdate). */
    cacheSecondsWithoutNextUpdate: z.number().int().min(1).default(3600),
    /** Allow CRL URLs on loopback/private/link-local addresses (labs, tests); off: such URLs count as unreachable. */
    allowPrivateAddresses: z.boolean().default(false),
  }).strict().prefault({}),
  ownership: z.object({
    defaultPolicy: policy.default('claimed'),
    productLines: z.record(z.string(), policy).default({}),
  }).strict().prefault({}),
  /** Lab only: register unknown devices whose IDevID chains to idevid.anchorFiles on their first voucher. */
  autoRegister: z.object({ productLine: z.string().min(1) }).strict().optional(),
  auditLog: z.object({ maxEvents: z.number().int().min(1).max(100_000).default(256) }).strict().prefault({}),
  factory: z.object({
    /** Factory station client certificates (clientAuth) chain here. */
    stationAnchorFiles: files,
    /** Test station CA: accepted only in development mode. */
    testAnchorFiles: files,
    /** Devices registered at start-up (idempotent): [{serial, idevidIssuer, cert}] (cert relative to the seed file). */
    seedFile: path.optional(),
    /** Product line of seeded devices and the default for station requests. */
    productLine: z.string().min(1).default('default'),
    rateLimit: rate.default({ max: 600, windowSeconds: 60 }),
    stations: z.record(z.string(), z.object({
      productLines: z.array(z.string()).optional(),
      location: z.string().optional(),
      rateLimit: rate.optional(),
    }).strict()).default({}),
  }).strict().prefault({}),
  /** Separate HTTPS listener (MASA TLS certificate, no client certificate) for the token-authenticated admin API. */
  admin: z.object({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(9444),
    token: z.string().min(16),
  }).strict().optional(),
  store: z.discriminatedUnion('type', [
    z.object({ type: z.literal('memory') }).strict(),
    // Either a plain `url` (single node) or a `redis` section selecting single, sentinel or cluster.
    z.object({ type: z.literal('redis'), url: z.string().regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL').optional(),
      redis: redisConfigSchema.optional(), prefix: z.string().default('brski:masa:') }).strict()
      .refine((s) => (s.url === undefined) !== (s.redis === undefined), { message: 'give exactly one of url or redis' }),
  ]).prefault({ type: 'memory' }),
  limits: z.object({
    bodyBytes: z.number().int().min(1024).max(4 * 1024 * 1024).default(64 * 1024),
    requestTimeoutMs: z.number().int().min(100).default(30_000),
    headersTimeoutMs: z.number().int().min(100).default(10_000),
    keepAliveTimeoutMs: z.number().int().min(100).default(5_000),
  }).strict().prefault({}),
  log: z.object({ level: z.enum(LOG_LEVELS).default('info') }).strict().prefault({}),
}).strict().superRefine((c, ctx) => {
  if (c.idevid.ca && (c.idevid.caCertFile !== undefined || c.idevid.caKeyFile !== undefined)) {
    ctx.addIssue({ code: 'custom', path: ['idevid', 'ca'], message: 'give either idevid.ca or idevid.caCertFile + caKeyFile, not both' });
  }
  if ((c.idevid.caCertFile === undefined) !== (c.idevid.caKeyFile === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['idevid', c.idevid.caCertFile ? 'caKeyFile' : 'caCertFile'], message: 'caCertFile and caKeyFile go together' });
  }
  if (c.listen.workers > 1 && c.store.type !== 'redis') {
    // Each worker would have its own nonce ledger, claims and audit chains.
    ctx.addIssue({ code: 'custom', path: ['listen', 'workers'], message: 'more than 1 worker needs store.type redis' });
  }
  if (c.registrars.requireKnown && c.registrars.anchorFiles.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['registrars', 'anchorFiles'], message: 'required when registrars.requireKnown' });
  }
});

/** The IDevID CA section in either spelling (`idevid.ca`, or the caCertFile + caKeyFile shorthand). */
export function idevidCaConfig(c: MasaConfig): SigningKeyConfig | undefined {
  if (c.idevid.ca) return c.idevid.ca;
  if (c.idevid.caCertFile !== undefined && c.idevid.caKeyFile !== undefined) {
    return { certFile: c.idevid.caCertFile, keyFile: c.idevid.caKeyFile, chainFiles: [] };
  }
  return undefined;
}

/** Factory issuance runs when the IDevID CA key and at least one station anchor are configured. */
export function factoryEnabled(c: MasaConfig): boolean {
  return idevidCaConfig(c) !== undefined
    && (c.factory.stationAnchorFiles.length > 0 || (c.mode === 'development' && c.factory.testAnchorFiles.length > 0));
}

export type MasaConfig = z.output<typeof masaConfigSchema>;
export type MasaConfigInput = z.input<typeof masaConfigSchema>;

export function loadMasaConfig(file: string, env: NodeJS.ProcessEnv = process.env): MasaConfig {
  return loadConfig(file, masaConfigSchema, { envPrefix: ENV_PREFIX, env });
}

/** For tests and the demo orchestrator: an in-memory config object, relative paths against baseDir. */
export function buildMasaConfig(raw: Record<string, unknown>, baseDir: string, env: NodeJS.ProcessEnv = {}): MasaConfig {
  return buildConfig(raw, masaConfigSchema, { envPrefix: ENV_PREFIX, env, baseDir });
}
