/**
 * masa.yaml: the zod schema (every key validated at start; errors name the key) and loading with
 * environment overrides (BRSKI_MASA__LISTEN__PORT=9443 …, see shared/src/config/load.ts).
 * Keys ending in File hold paths relative to the config file; `admin.token_file` reads the token
 * from a file (container secrets).
 */
import { z } from 'zod';
import { buildConfig, loadConfig } from '@brski/shared/config/load';
import { redisConfigSchema } from '@brski/shared/store/redis';
import { LOG_LEVELS } from '@brski/shared/observability/logger';
import { OWNERSHIP_POLICIES } from './store/types.ts';

export const ENV_PREFIX = 'BRSKI_MASA';

const policy = z.enum(OWNERSHIP_POLICIES as unknown as ['claimed', 'first-use', 'open']);
const path = z.string().min(1);

export const masaConfigSchema = z.object({
  /** production: test station credentials refused, admin token required to enable the admin API. */
  mode: z.enum(['production', 'development']).default('production'),
  listen: z.object({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(9443),
  }).strict().prefault({}),
  tls: z.object({
    /** Server certificate followed by its chain (PEM). */
    certFile: path,
    keyFile: path,
    /** CA certificates sent in the CertificateRequest hint list (acceptance is decided by the app). */
    clientCaFile: path.optional(),
  }).strict(),
  /** Voucher-signing key and certificate chain (the chain the pledges' anchor validates). */
  signer: z.object({ keyFile: path, certFile: path }).strict(),
  /** The manufacturer IDevID CA: anchors for PVR signers; with keyFile, the factory issues IDevIDs from it. */
  idevidCa: z.object({ certFile: path, keyFile: path.optional() }).strict(),
  /** Content of the MASA URL extension put in new IDevIDs (authority form, e.g. masa.example.com:9443). */
  masaUrl: z.string().min(1).max(255),
  store: z.discriminatedUnion('type', [
    z.object({ type: z.literal('memory') }).strict(),
    z.object({ type: z.literal('redis'), redis: redisConfigSchema }).strict(),
  ]).prefault({ type: 'memory' }),
  voucher: z.object({
    formats: z.array(z.enum(['cms', 'jws', 'cose'])).min(1).default(['cms', 'jws', 'cose']),
    pin: z.enum(['domain-ca', 'issuing-ca', 'registrar']).default('domain-ca'),
    includeIdevidIssuer: z.boolean().default(false),
    noncelessLifetimeSeconds: z.number().int().min(60).max(366 * 86_400).default(1200),
    nonceTtlSeconds: z.number().int().min(60).default(90 * 86_400),
    proximity: z.enum(['exact', 'same-issuer']).default('exact'),
    maxRequestBytes: z.number().int().min(1024).max(1024 * 1024).default(64 * 1024),
  }).strict().prefault({}),
  registrars: z.object({
    /** Registrar CAs this MASA knows (PEM); required for nonceless vouchers to unclaimed devices. */
    anchorsFile: path.optional(),
    /** Refuse every registrar that does not chain to anchorsFile. */
    requireKnown: z.boolean().default(false),
  }).strict().prefault({}),
  ownership: z.object({
    defaultPolicy: policy.default('claimed'),
    productLines: z.record(z.string(), policy).default({}),
    /** Lab only: register unknown devices whose IDevID chains to idevidCa on their first voucher. */
    autoRegister: z.boolean().default(false),
    defaultProductLine: z.string().min(1).default('default'),
  }).strict().prefault({}),
  auditLog: z.object({ maxEvents: z.number().int().min(1).max(100_000).default(256) }).strict().prefault({}),
  factory: z.object({
    enabled: z.boolean().default(false),
    stationCaFile: path.optional(),
    /** Test station CA: accepted only in development mode. */
    testCaFile: path.optional(),
    rateLimit: z.object({ max: z.number().int().min(1), windowSeconds: z.number().int().min(1) }).strict()
      .default({ max: 600, windowSeconds: 60 }),
    stations: z.record(z.string(), z.object({
      productLines: z.array(z.string()).optional(),
      location: z.string().optional(),
      rateLimit: z.object({ max: z.number().int().min(1), windowSeconds: z.number().int().min(1) }).strict().optional(),
    }).strict()).default({}),
    /** IDevID lifetime; absent → no expiry (802.1AR). */
    validityDays: z.number().int().min(1).optional(),
  }).strict().prefault({}),
  admin: z.object({
    /** Bearer token for /admin; absent → admin API disabled. At least 32 characters. */
    token: z.string().min(32).optional(),
  }).strict().prefault({}),
  limits: z.object({
    bodyBytes: z.number().int().min(1024).max(4 * 1024 * 1024).default(64 * 1024),
    requestTimeoutMs: z.number().int().min(100).default(30_000),
    headersTimeoutMs: z.number().int().min(100).default(10_000),
    keepAliveTimeoutMs: z.number().int().min(100).default(5_000),
  }).strict().prefault({}),
  log: z.object({ level: z.enum(LOG_LEVELS).default('info') }).strict().prefault({}),
}).strict().superRefine((c, ctx) => {
  if (c.factory.enabled) {
    if (!c.idevidCa.keyFile) ctx.addIssue({ code: 'custom', path: ['idevidCa', 'keyFile'], message: 'required when factory.enabled' });
    if (!c.factory.stationCaFile && !(c.mode === 'development' && c.factory.testCaFile)) {
      ctx.addIssue({ code: 'custom', path: ['factory', 'stationCaFile'], message: 'required when factory.enabled' });
    }
  }
  if (c.registrars.requireKnown && !c.registrars.anchorsFile) {
    ctx.addIssue({ code: 'custom', path: ['registrars', 'anchorsFile'], message: 'required when registrars.requireKnown' });
  }
});

export type MasaConfig = z.output<typeof masaConfigSchema>;
export type MasaConfigInput = z.input<typeof masaConfigSchema>;

export function loadMasaConfig(file: string, env: NodeJS.ProcessEnv = process.env): MasaConfig {
  return loadConfig(file, masaConfigSchema, { envPrefix: ENV_PREFIX, env });
}

/** For tests and the demo orchestrator: an in-memory config object, relative paths against baseDir. */
export function buildMasaConfig(raw: Record<string, unknown>, baseDir: string, env: NodeJS.ProcessEnv = {}): MasaConfig {
  return buildConfig(raw, masaConfigSchema, { envPrefix: ENV_PREFIX, env, baseDir });
}
