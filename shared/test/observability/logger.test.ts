import { describe, expect, it } from 'vitest';
import { createLogger, redactSecrets } from '../../src/observability/logger.ts';
import { MAX_DEPTH } from '../../src/observability/redact.ts';

function capture(redact?: string[]) {
  const lines: Array<Record<string, unknown>> = [];
  const text: string[] = [];
  const destination = { write(s: string) { text.push(s); lines.push(JSON.parse(s)); return true; } };
  return { logger: createLogger({ name: 'test', level: 'debug', destination: destination as never, ...(redact ? { redact } : {}) }), lines, text };
}

describe('logger redaction', () => {
  it('redacts secret keys at any depth, in arrays, case-insensitively by suffix', () => {
    const { logger, text } = capture();
    logger.info({
      a: { b: { c: { d: { e: { pin: 'SECRET-1' } } } } },
      list: [{ password: 'SECRET-2' }, [{ adminToken: 'SECRET-3' }]],
      redis: { sentinelPassword: 'SECRET-4' }, headers: { Cookie: 'SECRET-5', Authorization: 'SECRET-6' },
      hsm: { PrivateKey: 'SECRET-7', module: '/usr/lib/softhsm.so' }, apiKey: 'SECRET-8', clientSecret: 'SECRET-9', passphrase: 'SECRET-10',
    }, 'config');
    const line = text.at(-1)!;
    for (let i = 1; i <= 10; i++) expect(line).not.toContain(`SECRET-${i}"`);
    expect(line).toContain('"module":"/usr/lib/softhsm.so"');
    expect(JSON.parse(line).a.b.c.d.e.pin).toBe('[redacted]');
  });

  it('leaves the voucher-path fields alone and the caller objects unchanged', () => {
    const { logger, lines } = capture();
    const obj = { serial: 'PSIM-1', format: 'jws', nonced: true, seq: 3, nested: { token: 't', keep: 1 } };
    logger.info(obj, 'voucher issued');
    expect(lines.at(-1)).toMatchObject({ serial: 'PSIM-1', format: 'jws', nonced: true, seq: 3, nested: { token: '[redacted]', keep: 1 } });
    expect(obj.nested.token).toBe('t');
  });

  it('redacts child bindings, also of grandchildren', () => {
    const { logger, text } = capture();
    logger.child({ reqId: 'r1', token: 'SECRET-C1' }).child({ auth: { password: 'SECRET-C2' } }).info({ x: 1 }, 'hello');
    const line = text.at(-1)!;
    expect(line).not.toContain('SECRET-C');
    expect(JSON.parse(line)).toMatchObject({ reqId: 'r1', token: '[redacted]', auth: { password: '[redacted]' }, x: 1 });
  });

  it('an error keeps message and stack but not a secret property', () => {
    const { logger, lines } = capture();
    const err = Object.assign(new Error('boom'), { token: 'SECRET-E1', code: 'x' });
    logger.error({ err }, 'failed');
    const l = lines.at(-1)! as { err: Record<string, unknown> };
    expect(l.err).toMatchObject({ type: 'Error', message: 'boom', code: 'x', token: '[redacted]' });
    expect(String(l.err['stack'])).toContain('boom');
    expect(err.token).toBe('SECRET-E1');
    logger.error({ cause: err }, 'under another key');
    expect(JSON.stringify(lines.at(-1))).not.toContain('SECRET-E1');
  });

  it('a subtree deeper than the walk is replaced, never printed', () => {
    const { logger, text } = capture();
    let deep: Record<string, unknown> = { pin: 'SECRET-D' };
    for (let i = 0; i < MAX_DEPTH + 3; i++) deep = { n: deep };
    logger.info({ deep }, 'deep');
    expect(text.at(-1)).not.toContain('SECRET-D');
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    expect(() => logger.info({ cyclic }, 'cycle')).not.toThrow();
  });

  it('extra explicit paths still apply', () => {
    const { logger, lines } = capture(['config.licence']);
    logger.info({ config: { licence: 'L-123', name: 'n' } }, 'x');
    expect(lines.at(-1)).toMatchObject({ config: { licence: '[redacted]', name: 'n' } });
  });

  it('redactSecrets returns the same object when there is nothing to redact', () => {
    const o = { a: [1, { b: 'c' }], d: new Date(0), buf: Buffer.from('pin') };
    expect(redactSecrets(o)).toBe(o);
    expect(redactSecrets({ pin: undefined })).toEqual({ pin: undefined });
  });
});
