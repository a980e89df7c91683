import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { Command } from 'commander';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { register } from '../commands/voucher.ts';
import { initDemoPki, type PkiManifest } from '../lib/pki-init.ts';

const V = '/work/shared/vectors';
let m: PkiManifest;
let dir: string;

/** Runs `brski voucher …` in-process; returns stdout, stderr and the exit code it set. */
async function brski(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  const out: string[] = []; const err: string[] = [];
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { out.push(typeof s === 'string' ? s : Buffer.from(s).toString('latin1')); return true; });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => { err.push(String(s)); return true; });
  process.exitCode = undefined;
  try {
    const program = new Command('brski').exitOverride().configureOutput({ writeErr: (s) => err.push(s) });
    register(program);
    await program.parseAsync(args, { from: 'user' });
  } finally {
    o.mockRestore(); e.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return { out: out.join(''), err: err.join(''), code };
}

afterEach(() => { process.exitCode = undefined; });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'voucher-cli-'));
  m = await initDemoPki({ out: join(dir, 'pki'), devices: 1 });
  const domainCa = new X509Certificate(readFileSync(m.domainCa.cert));
  writeFileSync(join(dir, 'voucher.json'), JSON.stringify({
    'ietf-voucher:voucher': {
      'created-on': '2026-01-01T00:00:00Z', assertion: 'logged', 'serial-number': 'PSIM-000001',
      nonce: Buffer.from('0123456789abcdef').toString('base64'), 'pinned-domain-cert': domainCa.raw.toString('base64'),
    },
  }));
});

describe('brski voucher sign + verify', () => {
  it.each(['cms', 'jws', 'cose'] as const)('%s: signs with the MASA signer and verifies against the manufacturer root', async (format) => {
    const out = join(dir, `v.${format}`);
    const s = await brski('voucher', 'sign', '--format', format, '--key', m.masaSigner.key, '--cert', m.masaSigner.cert, '--in', join(dir, 'voucher.json'), '--out', out);
    expect(s.code).toBe(0);
    const v = await brski('voucher', 'verify', '--in', out, '--trust', m.manufacturerCa.cert, '--json');
    expect(v.err).toBe('');
    expect(v.code).toBe(0);
    const report = JSON.parse(v.out);
    expect(report).toMatchObject({ valid: true, format, kind: 'voucher', role: 'voucher' });
    expect(report.payload['ietf-voucher:voucher']['serial-number']).toBe('PSIM-000001');
    expect(report.signer).toContain('PSIM MASA Voucher Signer');
  });

  it('fails with a one-line reason for the wrong anchor, a tampered artifact, and an expired signer', async () => {
    const out = join(dir, 'neg.cms');
    await brski('voucher', 'sign', '--format', 'cms', '--key', m.masaSigner.key, '--cert', m.masaSigner.cert, '--in', join(dir, 'voucher.json'), '--out', out);
    const wrong = await brski('voucher', 'verify', '--in', out, '--trust', m.domainCa.cert);
    expect(wrong.code).not.toBe(0);
    expect(wrong.err).toMatch(/^invalid: untrusted-chain: [^\n]*\n$/);
    expect(wrong.out).toBe('');
    const der = readFileSync(out);
    const i = der.indexOf(Buffer.from('PSIM-000001'));
    der[i + 10] = 0x32;
    writeFileSync(join(dir, 'tampered.cms'), der);
    const tampered = await brski('voucher', 'verify', '--in', join(dir, 'tampered.cms'), '--trust', m.manufacturerCa.cert);
    expect(tampered.code).not.toBe(0);
    expect(tampered.err).toMatch(/^invalid: /);
    const late = await brski('voucher', 'verify', '--in', out, '--trust', m.manufacturerCa.cert, '--at', '2099-01-01T00:00:00Z');
    expect(late.code).not.toBe(0);
    expect(late.err).toMatch(/invalid: certificate-expired|invalid: untrusted-chain/);
    writeFileSync(join(dir, 'junk.bin'), 'hello world');
    const junk = await brski('voucher', 'verify', '--in', join(dir, 'junk.bin'), '--trust', m.manufacturerCa.cert);
    expect(junk.code).not.toBe(0);
    expect(junk.err).toMatch(/^invalid: malformed/);
  });

  it('refuses to sign a payload that breaks the voucher rules', async () => {
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ 'ietf-voucher:voucher': { 'serial-number': 'X', nonce: 'AAEC' } }));
    await expect(brski('voucher', 'sign', '--format', 'jws', '--key', m.masaSigner.key, '--cert', m.masaSigner.cert, '--in', join(dir, 'bad.json'))).rejects.toThrow();
  });
});

describe('brski voucher verify on published vectors', () => {
  it('RFC 8995 CMS voucher (base64 file) verifies at 2021-04-14', async () => {
    const r = await brski('voucher', 'verify', '--in', `${V}/rfc8995/voucher_00-D0-E5-F2-00-02.b64`, '--trust', `${V}/rfc8995/vendor.crt`, '--at', '2021-04-14T00:00:00Z');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)['ietf-voucher:voucher'].nonce).toBe('-_XE9zK9q8Ll1qylMtLKeg');
  });

  it('8366bis voucher fails against the same-name RSA vendor certificate', async () => {
    const r = await brski('voucher', 'verify', '--in', `${V}/rfc8366bis/voucher_00-D0-E5-F2-00-02.der`, '--trust', `${V}/rfc8366bis/vendor-00-D0-E5-F2-00-02.crt`, '--at', '2022-07-11T00:00:00Z');
    expect(r.code).not.toBe(0);
  });

  it('cBRSKI COSE voucher signed by the MASA CA itself', async () => {
    const r = await brski('voucher', 'verify', '--in', `${V}/cbrski/voucher.cose`, '--trust', `${V}/cbrski/masa_ca.pem`, '--at', '2022-12-07T00:00:00Z');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)['ietf-voucher:voucher']['serial-number']).toBe('JADA123456789');
    const wrong = await brski('voucher', 'verify', '--in', `${V}/cbrski/voucher.cose`, '--trust', `${V}/cbrski/domain_ca.pem`, '--at', '2022-12-07T00:00:00Z');
    expect(wrong.code).not.toBe(0);
  });

  it('JWS voucher chains to the ManufacturerCA', async () => {
    const chain = readFileSync(`${V}/jws-voucher/voucher-signer.chain.pem`, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)!;
    writeFileSync(join(dir, 'mca.pem'), chain[1]!);
    const r = await brski('voucher', 'verify', '--in', `${V}/jws-voucher/voucher.jws.json`, '--trust', join(dir, 'mca.pem'), '--json');
    expect(r.err).toBe('');
    expect(JSON.parse(r.out)).toMatchObject({ format: 'jws', kind: 'voucher' });
  });
});
