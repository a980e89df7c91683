/**
 * Hostile input: garbage, truncation, oversize, deep nesting and random mutations must end in a
 * typed BrskiError (or, for a mutation of unsigned bytes, a successful verification of the
 * unchanged payload) — never a crash, a foreign exception or a hang.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectEnvelope, signEnvelope, verifyEnvelope, type VerifyEnvelopeOptions } from '../../src/envelope/index.ts';
import { BrskiError } from '../../src/errors.ts';
import { VOUCHER_FORMATS, type VoucherFormat } from '../../src/media.ts';
import { createTestPki, type TestPki } from './fixtures.ts';
import { samplePayload } from './samples.ts';

async function outcome(p: Promise<{ payload: Uint8Array }>): Promise<{ code: string; payload?: Uint8Array }> {
  try {
    const v = await p;
    return { code: 'ok', payload: v.payload };
  } catch (e) {
    if (!(e instanceof BrskiError)) throw new Error(`foreign exception: ${String(e)}`, { cause: e });
    return { code: e.code };
  }
}

describe('envelope robustness', () => {
  let pki: TestPki;
  const signed = new Map<VoucherFormat, Uint8Array>();
  const opts = (): VerifyEnvelopeOptions => ({ anchors: [pki.root.cert] });
  beforeAll(async () => {
    pki = createTestPki('P-256');
    for (const f of VOUCHER_FORMATS) {
      signed.set(f, await signEnvelope(f, samplePayload(f, 'rvr'), pki.signer, { unprotectedX5bag: pki.signer.certificates }));
    }
  });
  afterAll(() => pki.cleanup());

  for (const format of VOUCHER_FORMATS) {
    describe(format, () => {
      it('garbage → malformed', async () => {
        const inputs = [
          Buffer.from('hello world'), Buffer.from([0x30]), Buffer.from([0x30, 0x80]), Buffer.from([0xd2]), Buffer.from([0x84, 0x40]),
          Buffer.from('{'), Buffer.from('{"payload":1}'), Buffer.from('[]'), Buffer.from('null'), Buffer.from([0xff, 0xfe, 0xfd]),
          Buffer.from('MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'), Buffer.from('eyJ.eyJ.e'),
        ];
        for (const input of inputs) {
          expect([input.toString('hex'), (await outcome(verifyEnvelope(format, input, opts()))).code]).toEqual([input.toString('hex'), 'malformed']);
        }
      });

      it('empty → malformed; oversized → too-large before parsing', async () => {
        expect((await outcome(verifyEnvelope(format, new Uint8Array(0), opts()))).code).toBe('malformed');
        const big = new Uint8Array(64 * 1024 + 1).fill(0x30);
        expect((await outcome(verifyEnvelope(format, big, opts()))).code).toBe('too-large');
        const bytes = signed.get(format)!;
        expect((await outcome(verifyEnvelope(format, bytes, { ...opts(), maxBytes: bytes.length - 1 }))).code).toBe('too-large');
        expect(() => inspectEnvelope(format, big)).toThrow(BrskiError);
        // a larger explicit limit is honoured end to end
        expect((await outcome(verifyEnvelope(format, bytes, { ...opts(), maxBytes: 1024 * 1024 }))).code).toBe('ok');
      });

      it('every truncation → typed error', async () => {
        const bytes = signed.get(format)!;
        const seen = new Set<string>();
        for (let n = 1; n < bytes.length; n += Math.max(1, Math.floor(bytes.length / 97))) {
          const r = await outcome(verifyEnvelope(format, bytes.subarray(0, n), opts()));
          expect(r.code).not.toBe('ok');
          seen.add(r.code);
        }
        expect([...seen].every((c) => ['malformed', 'bad-signature', 'untrusted-chain'].includes(c))).toBe(true);
      });

      it('random mutations → typed error or the unchanged payload', async () => {
        const bytes = signed.get(format)!;
        const original = Buffer.from(samplePayload(format, 'rvr'));
        await fc.assert(fc.asyncProperty(
          fc.array(fc.tuple(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
          async (edits) => {
            const m = Uint8Array.from(bytes);
            for (const [i, x] of edits) m[i]! ^= x;
            const r = await outcome(verifyEnvelope(format, m, opts()));
            if (r.code === 'ok') expect(Buffer.from(r.payload!).equals(original)).toBe(true);
          }), { numRuns: 150, seed: 8995 });
      });
    });
  }

  it('deep nesting does not blow the stack', async () => {
    const depth = 20_000;
    const ber = Buffer.concat([Buffer.alloc(depth * 2, Buffer.from([0x30, 0x80])), Buffer.alloc(depth * 2, 0)]);
    expect((await outcome(verifyEnvelope('cms', ber.subarray(0, 60_000), opts()))).code).toBe('malformed');
    const cbor = Buffer.concat([Buffer.from([0xd2]), Buffer.alloc(60_000, 0x81), Buffer.from([0x00])]);
    expect((await outcome(verifyEnvelope('cose', cbor, opts()))).code).toBe('malformed');
    const json = Buffer.from('{"payload":"", "signatures":' + '['.repeat(30_000) + ']'.repeat(30_000) + '}');
    expect((await outcome(verifyEnvelope('jws', json, opts()))).code).toBe('malformed');
  });
});
