import { describe, expect, it } from 'vitest';
import { MalformedError, VoucherValidationError } from '../../src/errors.ts';
import { cborEncode } from '../../src/voucher/cbor-codec.ts';
import { encodeAuditLog, encodeStatusTelemetry, parseAuditLog, parseStatusTelemetry, type AuditLog } from '../../src/voucher/telemetry.ts';
import { readVector } from '../helpers/vectors.ts';
import { hex, json, utf8 } from './fixtures.ts';

function leafOf(fn: () => unknown): string | undefined {
  try { fn(); } catch (e) { expect(e).toBeInstanceOf(VoucherValidationError); return (e as VoucherValidationError).leaf; }
  return undefined;
}

describe('status telemetry', () => {
  it('parses the RFC 8995 JSON examples', () => {
    expect(parseStatusTelemetry(readVector('rfc8995/rfc-text-voucher-status-example.json'), 'json')).toEqual({
      version: 1, status: false, reason: 'Informative human readable message', reasonContext: { additional: 'JSON' }, unknownKeys: [],
    });
    expect(parseStatusTelemetry(readVector('rfc8995/rfc-text-enrollstatus-example.json'), 'json').status).toBe(true);
    for (const f of ['vstatus-success', 'vstatus-failure', 'estatus-success', 'estatus-failure']) {
      const t = parseStatusTelemetry(readVector(`brski-prm/text-examples/${f}.json`), 'json');
      expect(t.status).toBe(f.endsWith('success'));
      expect(Object.keys(t.reasonContext!)).toEqual([f.startsWith('v') ? 'pvs-details' : 'pes-details']);
    }
  });

  it('parses the cBRSKI CBOR payloads (CF 60, text keys; reason-context with an integer key)', () => {
    expect(parseStatusTelemetry(readVector('cbrski/voucher-status.cbor'), 'cbor')).toEqual({
      version: 1, status: false, reason: 'Informative human-readable error message', reasonContext: { 0: 'Additional information' }, unknownKeys: [],
    });
    expect(parseStatusTelemetry(readVector('cbrski/enrollstatus-success.cbor'), 'cbor')).toEqual({ version: 1, status: true, unknownKeys: [] });
    expect(parseStatusTelemetry(readVector('cbrski/enrollstatus-failure.cbor'), 'cbor')).toEqual({
      version: 1, status: false, reason: '<Informative human readable error message>', unknownKeys: [],
    });
  });

  it('encodes both forms; the CBOR success form is the digest §7.2 example byte for byte', () => {
    expect(Buffer.from(encodeStatusTelemetry({ status: true }, 'cbor')).toString('hex').toUpperCase()).toBe('A26776657273696F6E0166737461747573F5');
    const full = { version: 1, status: false, reason: 'no pin', reasonContext: { detail: 'x' } };
    for (const enc of ['json', 'cbor'] as const) {
      expect(parseStatusTelemetry(encodeStatusTelemetry(full, enc), enc)).toEqual({ ...full, unknownKeys: [] });
    }
    expect(JSON.parse(Buffer.from(encodeStatusTelemetry(full, 'json')).toString())).toEqual({
      'version': 1, 'status': false, 'reason': 'no pin', 'reason-context': { detail: 'x' },
    });
  });

  it('lists unknown keys and accepts a higher version (the registrar alerts on it)', () => {
    const t = parseStatusTelemetry(json({ version: 2, status: true, Status: false, extra: 1 }), 'json');
    expect(t).toMatchObject({ version: 2, status: true, unknownKeys: ['Status', 'extra'] });
    expect(parseStatusTelemetry(cborEncode(new Map<unknown, unknown>([['version', 1], ['status', true], [7, 'x']])), 'cbor').unknownKeys).toEqual(['7']);
  });

  it('requires version and status with the right types, and checks reason / reason-context', () => {
    expect(leafOf(() => parseStatusTelemetry(json({ status: true }), 'json'))).toBe('version');
    expect(leafOf(() => parseStatusTelemetry(json({ version: 1 }), 'json'))).toBe('status');
    expect(leafOf(() => parseStatusTelemetry(json({ version: '1', status: true }), 'json'))).toBe('version');
    expect(leafOf(() => parseStatusTelemetry(json({ version: -1, status: true }), 'json'))).toBe('version');
    expect(leafOf(() => parseStatusTelemetry(json({ version: 1.5, status: true }), 'json'))).toBe('version');
    expect(leafOf(() => parseStatusTelemetry(json({ version: 1, status: 'true' }), 'json'))).toBe('status');
    expect(leafOf(() => parseStatusTelemetry(json({ version: 1, status: false, reason: 5 }), 'json'))).toBe('reason');
    expect(leafOf(() => parseStatusTelemetry(json({ version: 1, status: false, 'reason-context': 'text' }), 'json'))).toBe('reason-context');
    expect(leafOf(() => parseStatusTelemetry(json({ version: 1, status: false, 'reason-context': [1] }), 'json'))).toBe('reason-context');
  });

  it('rejects malformed input', () => {
    expect(() => parseStatusTelemetry(utf8('[1]'), 'json')).toThrow(MalformedError);
    expect(() => parseStatusTelemetry(new Uint8Array([0xff]), 'json')).toThrow(MalformedError);
    expect(() => parseStatusTelemetry(hex('82 01 02'), 'cbor')).toThrow(MalformedError);
    expect(() => parseStatusTelemetry(hex('a2 6776657273696f6e 01 6776657273696f6e 02'), 'cbor')).toThrow(/duplicate/);
    expect(() => parseStatusTelemetry(json({ version: 1, status: true, version2: 'x'.repeat(70_000) }), 'json')).toThrow(/limit/);
    expect(() => parseStatusTelemetry(utf8(`{"version":1,"status":true,"x":${'['.repeat(30)}${']'.repeat(30)}}`), 'json')).toThrow(/nested/);
  });
});

describe('audit log', () => {
  it('parses the RFC 8995 example with string numbers (DECISION 8)', () => {
    const log = parseAuditLog(readVector('rfc8995/rfc-text-auditlog-example.json'));
    expect(log).toEqual({
      version: 1,
      events: [
        { date: '2019-05-15T17:25:55.644-04:00', domainID: 'BduJhdHPpfhQLyponf48JzXSGZ8=', nonce: 'VOUFT-WwrEv0NuAQEHoV7Q', assertion: 'proximity', truncated: 0 },
        { date: '2017-05-15T17:25:55.644-04:00', domainID: 'BduJhdHPpfhQLyponf48JzXSGZ8=', nonce: 'f4G6Vi1t8nKo/FieCVgpBg==', assertion: 'proximity' },
      ],
      truncation: { noncedDuplicates: 0, noncelessDuplicates: 1, arbitrary: 2 },
    });
  });

  it('round-trips with integers, null nonces and unknown assertions like agent-proximity', () => {
    const log: AuditLog = {
      version: 1,
      events: [
        { date: '2024-06-24T09:02:16.244Z', domainID: 'BduJhdHPpfhQLyponf48JzXSGZ8=', nonce: 'khNyKpMthccia1rXw44/vQ==', assertion: 'agent-proximity', truncated: 3 },
        { date: '2024-06-25T00:00:00Z', domainID: 'BduJhdHPpfhQLyponf48JzXSGZ8=', nonce: null, assertion: 'some-future-value' },
      ],
      truncation: { noncedDuplicates: 0, noncelessDuplicates: 0, arbitrary: 1024 },
    };
    const bytes = encodeAuditLog(log);
    const raw = JSON.parse(Buffer.from(bytes).toString());
    expect(raw.version).toBe(1);
    expect(raw.events[0].truncated).toBe(3);
    expect(raw.events[1]).toHaveProperty('nonce', null);
    expect(raw.truncation).toEqual({ 'nonced duplicates': 0, 'nonceless duplicates': 0, 'arbitrary': 1024 });
    expect(parseAuditLog(bytes)).toEqual(log);
  });

  it('omits an all-zero truncation and reads a missing one as zeros; missing nonce is null', () => {
    const bytes = encodeAuditLog({ version: 1, events: [], truncation: { noncedDuplicates: 0, noncelessDuplicates: 0, arbitrary: 0 } });
    expect(JSON.parse(Buffer.from(bytes).toString())).toEqual({ version: 1, events: [] });
    const log = parseAuditLog(json({ version: 1, events: [{ date: '2024-01-01T00:00:00Z', domainID: 'AAAA', assertion: 'logged' }] }));
    expect(log.events[0]!.nonce).toBeNull();
    expect(log.truncation).toEqual({ noncedDuplicates: 0, noncelessDuplicates: 0, arbitrary: 0 });
  });

  it('rejects wrong types, naming the field', () => {
    const ev = { date: '2024-01-01T00:00:00Z', domainID: 'AAAA', nonce: null, assertion: 'logged' };
    const cases: Array<[unknown, string]> = [
      [{ events: [] }, 'version'],
      [{ version: '1.0', events: [] }, 'version'],
      [{ version: '-1', events: [] }, 'version'],
      [{ version: 1 }, 'events'],
      [{ version: 1, events: [1] }, 'events[0]'],
      [{ version: 1, events: [{ ...ev, date: 'yesterday' }] }, 'events[0].date'],
      [{ version: 1, events: [ev, { ...ev, domainID: 'not base64!' }] }, 'events[1].domainID'],
      [{ version: 1, events: [{ ...ev, nonce: 5 }] }, 'events[0].nonce'],
      [{ version: 1, events: [{ ...ev, assertion: '' }] }, 'events[0].assertion'],
      [{ version: 1, events: [{ ...ev, truncated: 'many' }] }, 'events[0].truncated'],
      [{ version: 1, events: [], truncation: [] }, 'truncation'],
      [{ version: 1, events: [], truncation: { arbitrary: 'x' } }, 'truncation.arbitrary'],
    ];
    for (const [doc, field] of cases) expect(leafOf(() => parseAuditLog(json(doc))), field).toBe(field);
    expect(() => parseAuditLog(utf8('"x"'))).toThrow(MalformedError);
  });
});
