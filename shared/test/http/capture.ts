/** A pino logger whose JSON lines land in an array. */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/observability/logger.ts';

export function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger({ name: 'test', level: 'debug', destination }, {}), lines };
}
