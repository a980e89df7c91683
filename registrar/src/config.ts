/**
 * registrar.yaml schema (zod). Keys ending in File/Files hold paths, resolved against the config
 * file's directory by the shared loader; `admin.token_file` reads the token from a file.
 */
import { z } from 'zod';
import { loadConfig } from '@brski/shared/config/load';
import { signingKeySchema, type SigningKeyConfig } from '@brski/shared/crypto/signing-key';
import { redisConfigSchema } from '@brski/shared/store/redis';

const port = z.number().int().min(0).max(65535);
const pathList = z.array(z.string().min(1)).min(1);


/** The domain CA key: PEM file or PKCS#11 token key (the shared signing-key section). */
export const caSchema = signingKeySchema;
export type CaConfig = SigningKeyConfig;

export const manufacturerSchema = z.object({
  name: z.string().min(1),
  /** PEM files with the manufacturer's IDevID CA certificate(s): pledges must chain to one. */
  idevidAnchorFiles: pathList,
  /** Overrides the MASA URL found in the IDevID extension (authority or https URL). */
  masaUrl: z.string().min(1).optional(),
  /** TLS trust anchors for the MASA server; default: system roots. */
  masaTlsAnchorFiles: z.array(z.string().min(1)).optional(),
  /** Anchor(s) for the MASA's voucher signature; when set, vouchers are verified before relaying. */
  voucherAnchorFiles: z.array(z.string().min(1)).optional(),
  /** Some IDevIDs carry real expiry dates long past; digest §8.3 wants this per manufacturer. */
  ignoreIdevidExpiry: z.boolean().default(false),
}).strict();

export const registrarConfigSchema = z.object({
  /** Name of this registrar domain; also the Redis key hash tag. */
  domain: z.string().min(1).default('default'),
  listen: z.object({ host: z.string().default('0.0.0.0'), port: port.default(8443) }).strict().default({ host: '0.0.0.0', port: 8443 }),
  /** TLS server identity (cmcRA + serverAuth + clientAuth): also the RVR signer and MASA client cert. */
  tls: z.object({ certFile: z.string().min(1), keyFile: z.string().min(1), chainFiles: z.array(z.string()).optional() }).strict(),
  /** Domain CA that issues LDevIDs and signs CRLs (certificate chain PEM + PEM key or PKCS#11 key). */
  ca: caSchema,
  manufacturers: z.array(manufacturerSchema).min(1),
  policy: z.object({
    mode: z.enum(['accept', 'allowlist', 'approve']).default('accept'),
    /** Serials or glob patterns (`*`, `?`) admitted in allowlist mode (and without approval in approve mode). */
    allowlist: z.array(z.string().min(1)).default([]),
    /** Retry-After (s) while a pledge waits for an operator. */
    approvalRetryAfter: z.number().int().min(1).max(60).default(30),
    /** Refusal status for pledges the policy rejects: 404 (RFC 8995 SHOULD) or 403 (admin-fixable). */
    refusalStatus: z.union([z.literal(403), z.literal(404)]).default(404),
  }).strict().default({ mode: 'accept', allowlist: [], approvalRetryAfter: 30, refusalStatus: 404 }),
  masa: z.object({
    timeoutMs: z.number().int().min(100).default(10_000),
    /** Attempts within one pledge request before it gets 202 (each bounded by timeoutMs). */
    attempts: z.number().int().min(1).max(5).default(2),
    /** Background retries after the pledge got its 202. */
    backgroundAttempts: z.number().int().min(0).max(100).default(10),
    backgroundDelayMs: z.number().int().min(10).default(5_000),
    /** Retry-After (s) sent with the 202 (pledges cap at 60). */
    retryAfter: z.number().int().min(1).max(60).default(10),
    /** Most MASA exchanges retried in the background at once; beyond it pledges get 503. */
    queueSize: z.number().int().min(1).default(1000),
    /** How long an outcome stays available for the identical PVR retry. */
    jobTtlSeconds: z.number().int().min(10).default(4 * 3600),
    /**
     * Deprecated, no effect: still accepted so existing configs load. It used to put
     * domain-cert-revocation-checks into the RVR, where the leaf is meaningless (digest §5.2); the
     * MASA decides it for the voucher.
     */
    domainCertRevocationChecks: z.boolean().optional(),
  }).strict().default({ timeoutMs: 10_000, attempts: 2, backgroundAttempts: 10, backgroundDelayMs: 5_000, retryAfter: 10,
    queueSize: 1000, jobTtlSeconds: 4 * 3600 }),
  enroll: z.object({
    /** simpleenroll accepted this long after the voucher for that IDevID. */
    voucherWindowSeconds: z.number().int().min(1).default(3600),
    lifetimeDays: z.number().int().min(1).max(3650).default(365),
    /** Subject of issued LDevIDs; `{serial}` is replaced by the pledge serial. */
    subjectCn: z.string().default('{serial}'),
    /** Put the serial into subject serialNumber too. */
    subjectSerialNumber: z.boolean().default(true),
    /** DNS SAN template (`{serial}` replaced, lower-cased); omitted when unset. */
    sanDns: z.string().optional(),
    /** Curve the CSR key must use (announced in csrattrs). */
    keyCurve: z.enum(['P-256', 'P-384']).default('P-256'),
  }).strict().default({ voucherWindowSeconds: 3600, lifetimeDays: 365, subjectCn: '{serial}', subjectSerialNumber: true, keyCurve: 'P-256' }),
  crl: z.object({
    lifetimeHours: z.number().int().min(1).default(24),
    /** URL put into issued LDevIDs as CRL distribution point (optional). */
    distributionUrl: z.string().url().optional(),
  }).strict().default({ lifetimeHours: 24 }),
  admin: z.object({
    host: z.string().default('127.0.0.1'),
    port: port.default(8444),
    /** Bearer token, at least 16 characters (prefer `token_file: path` or the env override; never logged). */
    token: z.string().min(16),
  }).strict(),
  store: z.discriminatedUnion('type', [
    z.object({ type: z.literal('memory') }).strict(),
    // Either a plain `url` (single node) or a `redis` section selecting single, sentinel or cluster.
    z.object({ type: z.literal('redis'), url: z.string().regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL').optional(),
      redis: redisConfigSchema.optional(), prefix: z.string().default('brski:registrar:') }).strict()
      .refine((s) => (s.url === undefined) !== (s.redis === undefined), { message: 'give exactly one of url or redis' }),
  ]).default({ type: 'memory' }),
  /** cBRSKI: CoAP over DTLS 1.2 on one UDP port (digest §9); needs the native DTLS addon (docs/dtls.md). */
  coaps: z.object({
    enabled: z.boolean().default(false),
    host: z.string().default('127.0.0.1'),
    port: port.default(5684),
    requireClientCert: z.boolean().default(true),
    maxSessions: z.number().int().positive().optional(),
    idleTimeoutMs: z.number().int().positive().optional(),
  }).strict().default({ enabled: false, host: '127.0.0.1', port: 5684, requireClientCert: true }),
  /** DNS-SD over mDNS announcement of _brski-registrar._tcp (and ._udp with CoAPS); off by default. */
  discovery: z.object({
    mdns: z.boolean().default(false),
    interface: z.string().optional(),
    asProxy: z.boolean().default(false),
  }).strict().default({ mdns: false, asProxy: false }),
  limits: z.object({
    bodyBytes: z.number().int().min(1024).max(1024 * 1024).default(64 * 1024),
    requestTimeoutMs: z.number().int().min(1000).default(30_000),
  }).strict().default({ bodyBytes: 64 * 1024, requestTimeoutMs: 30_000 }),
  log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).strict()
    .default({ level: 'info' }),
  /**
   * MASA audit-log policy (digest §2.1 h, §7.3): after a pledge reports voucher success the log is
   * fetched with the same RVR and evaluated. off: never fetched; warn: verdict recorded, violations
   * logged; enforce: simpleenroll refused (406) after a violation until an operator clears it, and
   * answered 202 + Retry-After until a verdict exists.
   */
  auditPolicy: z.object({
    mode: z.enum(['off', 'warn', 'enforce']).default('warn'),
    /** Further domainIDs (base64, e.g. a sister site) whose events are not violations. */
    allowDomainIds: z.array(z.string().regex(/^[A-Za-z0-9+/_-]+={0,2}$/, 'expected a base64 domainID')).default([]),
    /** Nonceless vouchers in the log are violations. */
    requireNonce: z.boolean().default(true),
    /** Fetch attempts per round (each bounded by masa.timeoutMs), and the pause between them. */
    attempts: z.number().int().min(1).max(20).default(5),
    retryDelayMs: z.number().int().min(10).default(5_000),
    /** Retry-After (s) on EST while no verdict exists (enforce). */
    retryAfter: z.number().int().min(1).max(60).default(10),
  }).strict().default({ mode: 'warn', allowDomainIds: [], requireNonce: true, attempts: 5, retryDelayMs: 5_000, retryAfter: 10 }),
}).strict();

export type RegistrarConfig = z.infer<typeof registrarConfigSchema>;
export type RegistrarConfigInput = z.input<typeof registrarConfigSchema>;
export type ManufacturerConfig = z.infer<typeof manufacturerSchema>;

/** Validates an already-built object (tests, the demo) with the same rules as the file loader. */
export function parseRegistrarConfig(input: unknown): RegistrarConfig {
  return registrarConfigSchema.parse(input);
}

/** Reads registrar.yaml; env overrides use BRSKI_REGISTRAR__<KEY>__<KEY> (e.g. BRSKI_REGISTRAR__LISTEN__PORT=9443). */
export function loadRegistrarConfig(path: string, env: NodeJS.ProcessEnv = process.env): RegistrarConfig {
  return loadConfig(path, registrarConfigSchema, { envPrefix: 'BRSKI_REGISTRAR', env });
}
