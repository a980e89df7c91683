/**
 * Structured logging: pino, one JSON object per line on stdout. Secrets are redacted by key name
 * at any depth (redact.ts) so that a careless `log.info({ config })` cannot leak a PIN, a token or
 * a private key.
 */
import { pino, type Logger, type LoggerOptions } from 'pino';
import { CENSOR, redactSecrets } from './redact.ts';

export { redactSecrets, SECRET_KEY } from './redact.ts';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerConfig {
  /** Service name, added as `service` to every line. */
  name: string;
  /** Explicit level; otherwise BRSKI_LOG_LEVEL / LOG_LEVEL, otherwise 'info'. */
  level?: LogLevel;
  /**
   * Extra pino redaction paths on top of the by-name rule (SECRET_KEY), for secrets under other
   * names. Explicit paths are cheap; wildcard paths cost ~25 µs per line.
   */
  redact?: readonly string[];
  /** Destination stream (tests); defaults to stdout. */
  destination?: NodeJS.WritableStream | pino.DestinationStream;
}

/**
 * pino's isoTime, formatted once per millisecond: at thousands of lines per second most lines
 * share their millisecond, and Date formatting was ~5 % of a MASA request's HTTP-layer CPU.
 */
let lastMs = 0;
let lastText = '';
function cachedIsoTime(): string {
  const now = Date.now();
  if (now !== lastMs) { lastMs = now; lastText = `,"time":"${new Date(now).toISOString()}"`; }
  return lastText;
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
    ...(cfg.redact?.length ? { redact: { paths: [...cfg.redact], censor: CENSOR } } : {}),
    timestamp: cachedIsoTime,
    // `log` sees each line's object before serializers run, so err's output is walked again below
    formatters: { level: (label) => ({ level: label }), log: redactSecrets, bindings: redactSecrets },
    serializers: { err: (e: Error) => redactSecrets(pino.stdSerializers.err(e)) },
  };
  const logger = cfg.destination === undefined
    ? pino(options)
    : pino(options, cfg.destination as pino.DestinationStream);
  // pino applies formatters.bindings to the base bindings only; children inherit this `child`
  // (they are Object.create of their parent), so every descendant's bindings are redacted too.
  type ChildFn = (this: Logger, bindings: pino.Bindings, opts?: pino.ChildLoggerOptions) => Logger;
  const child = logger.child as unknown as ChildFn;
  const redactedChild: ChildFn = function (bindings, opts) { return child.call(this, redactSecrets(bindings), opts); };
  logger.child = redactedChild as unknown as typeof logger.child;
  return logger;
}

/** A logger that drops everything (unit tests, library defaults). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
