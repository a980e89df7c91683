/**
 * Structured logging: pino, one JSON object per line on stdout. Secrets are redacted by path so
 * that a careless `log.info({ config })` cannot leak a PIN, a token or a private key.
 */
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Paths pino censors. `*.x` covers one level of nesting; the deeper entries cover the config
 * shapes the services log at start-up (e.g. `config.hsm.pin`).
 */
export const REDACT_PATHS: readonly string[] = [
  'pin', '*.pin', '*.*.pin', '*.*.*.pin',
  'token', '*.token', '*.*.token', '*.*.*.token',
  'password', '*.password', '*.*.password', '*.*.*.password',
  'privateKey', '*.privateKey', '*.*.privateKey', '*.*.*.privateKey',
  'secret', '*.secret', '*.*.secret', '*.*.*.secret',
  'authorization', '*.authorization', '*.headers.authorization', '*.*.headers.authorization',
  'cookie', '*.headers.cookie', '*.*.headers.cookie',
];

export interface LoggerConfig {
  /** Service name, added as `service` to every line. */
  name: string;
  /** Explicit level; otherwise BRSKI_LOG_LEVEL / LOG_LEVEL, otherwise 'info'. */
  level?: LogLevel;
  /** Extra redaction paths on top of REDACT_PATHS. */
  redact?: readonly string[];
  /** Destination stream (tests); defaults to stdout. */
  destination?: NodeJS.WritableStream | pino.DestinationStream;
}

function levelFromEnv(env: NodeJS.ProcessEnv): LogLevel | undefined {
  const raw = (env['BRSKI_LOG_LEVEL'] ?? env['LOG_LEVEL'])?.trim().toLowerCase();
  if (raw === undefined || raw === '') return undefined;
  if ((LOG_LEVELS as readonly string[]).includes(raw)) return raw as LogLevel;
  throw new Error(`log level ${JSON.stringify(raw)} is not one of ${LOG_LEVELS.join(', ')}`);
}

export function createLogger(cfg: LoggerConfig, env: NodeJS.ProcessEnv = process.env): Logger {
  const options: LoggerOptions = {
    name: cfg.name,
    level: cfg.level ?? levelFromEnv(env) ?? 'info',
    base: { service: cfg.name, pid: process.pid },
    redact: { paths: [...REDACT_PATHS, ...(cfg.redact ?? [])], censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: pino.stdSerializers.err },
  };
  return cfg.destination === undefined
    ? pino(options)
    : pino(options, cfg.destination as pino.DestinationStream);
}

/** A logger that drops everything (unit tests, library defaults). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
