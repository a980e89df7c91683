/**
 * Fail-closed behaviour of the PKCS#11 signer: every way the token or key can be unusable is a
 * typed HsmError ('hsm-unavailable', 503) — at start, or for the request when it happens while
 * running — and never a signature from somewhere else.
 */
import { generateKeyPairSync, verify, X509Certificate } from 'node:crypto';
import { rmSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ERROR_STATUS } from '../../src/errors.ts';
import { loadSigner } from '../../src/crypto/key-loader.ts';
import { HsmError, type HsmFailure } from '../../src/crypto/pkcs11/errors.ts';
import { openPkcs11Signer } from '../../src/crypto/pkcs11/pkcs11-signer.ts';
import { USER_PIN, createSoftHsm, softHsmMissingReason, type SoftHsm } from './softhsm.ts';

const skip = softHsmMissingReason();

async function failure(p: Promise<unknown>): Promise<HsmError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e, 'expected an HsmError, got success').toBeInstanceOf(HsmError);
  const err = e as HsmError;
  expect(err.code).toBe('hsm-unavailable');
  expect(err.httpStatus).toBe(503);
  expect(err.coapStatus).toBe('5.03');
  return err;
}

async function expectFailure(p: Promise<unknown>, reason: HsmFailure): Promise<HsmError> {
  const err = await failure(p);
  expect(err.failure).toBe(reason);
  return err;
}

describe.skipIf(skip !== undefined)('PKCS#11 fail-closed (SoftHSM2)', () => {
  let hsm: SoftHsm;
  let key: ReturnType<SoftHsm['keygen']>;

  // A fresh token directory per test: some tests destroy it.
  beforeEach(() => {
    hsm = createSoftHsm();
    hsm.token('fc');
    key = hsm.keygen('fc', 'voucher', 'P-256');
  });
  afterEach(() => hsm?.cleanup());

  it('is in the shared status table as 503 / 5.03', () => {
    expect(ERROR_STATUS['hsm-unavailable']).toEqual({ http: 503, coap: '5.03' });
  });

  it('module that does not exist → module-load', async () => {
    await expectFailure(loadSigner({ pkcs11Uri: key.uri, module: join(hsm.dir, 'nope.so'), pin: USER_PIN }), 'module-load');
    await expectFailure(loadSigner({ pkcs11Uri: key.uri, pin: USER_PIN }), 'module-load'); // no module anywhere
  });

  it('file that is not a PKCS#11 library → module-load', async () => {
    const fake = join(hsm.dir, 'fake.so');
    writeFileSync(fake, 'not an ELF file');
    await expectFailure(loadSigner({ pkcs11Uri: key.uri, module: fake, pin: USER_PIN }), 'module-load');
  });

  it('token missing → token-not-found', async () => {
    await expectFailure(loadSigner({ pkcs11Uri: 'pkcs11:token=no-such-token;object=voucher;type=private', module: hsm.modulePath, pin: USER_PIN }), 'token-not-found');
    // right label, wrong serial: still not found (serial pins the physical token)
    await expectFailure(loadSigner({ pkcs11Uri: 'pkcs11:token=fc;serial=0000000000000000;object=voucher', module: hsm.modulePath, pin: USER_PIN }), 'token-not-found');
  });

  it('two tokens matching the URI → token-ambiguous', async () => {
    hsm.token('fc2');
    await expectFailure(loadSigner({ pkcs11Uri: 'pkcs11:object=voucher', module: hsm.modulePath, pin: USER_PIN }), 'token-ambiguous');
  });

  it('wrong PIN → pin-incorrect, and the message carries no PIN', async () => {
    const err = await expectFailure(loadSigner({ pkcs11Uri: key.uri, module: hsm.modulePath, pin: '999999' }), 'pin-incorrect');
    expect(err.ckr).toBe('CKR_PIN_INCORRECT');
    expect(`${err.message} ${JSON.stringify(err.detail)}`).not.toContain('999999');
  });

  it('wrong PIN in a PIN file / URI pin-value → pin-incorrect, URI redacted', async () => {
    const pinFile = join(hsm.dir, 'bad.pin');
    writeFileSync(pinFile, '1111111\n');
    await expectFailure(loadSigner({ pkcs11Uri: key.uri, module: hsm.modulePath, pinFile }), 'pin-incorrect');
    const err = await expectFailure(loadSigner(`${key.uri}?module-path=${hsm.modulePath}&pin-value=7777777`), 'pin-incorrect');
    expect(`${err.message} ${JSON.stringify(err.detail)}`).not.toContain('7777777');
  });

  it('no PIN source at all, or an unreadable one → pin-missing', async () => {
    await expectFailure(loadSigner({ pkcs11Uri: key.uri, module: hsm.modulePath }), 'pin-missing');
    await expectFailure(loadSigner({ pkcs11Uri: key.uri, module: hsm.modulePath, pinFile: join(hsm.dir, 'absent.pin') }), 'pin-missing');
    await expectFailure(loadSigner({ pkcs11Uri: key.uri, module: hsm.modulePath, pinEnv: 'BRSKI_UNSET_PIN_VARIABLE' }), 'pin-missing');
    await expectFailure(loadSigner({ pkcs11Uri: key.uri, module: hsm.modulePath, pin: USER_PIN, pinEnv: 'X' }), 'pin-missing');
    await expectFailure(loadSigner(`${key.uri}?module-path=${hsm.modulePath}&pin-source=%7C/bin/echo%20${USER_PIN}`), 'pin-missing');
  });

  it('unknown key label / id → key-not-found', async () => {
    await expectFailure(loadSigner({ pkcs11Uri: 'pkcs11:token=fc;object=no-such-key;type=private', module: hsm.modulePath, pin: USER_PIN }), 'key-not-found');
    await expectFailure(loadSigner({ pkcs11Uri: 'pkcs11:token=fc;object=voucher;id=%01%02', module: hsm.modulePath, pin: USER_PIN }), 'key-not-found');
  });

  it('two keys matching → key-ambiguous; a URI for a public key → key-unusable', async () => {
    hsm.keygen('fc', 'other', 'P-256');
    await expectFailure(loadSigner({ pkcs11Uri: 'pkcs11:token=fc', module: hsm.modulePath, pin: USER_PIN }), 'key-ambiguous');
    await expectFailure(loadSigner({ pkcs11Uri: 'pkcs11:token=fc;object=voucher;type=public', module: hsm.modulePath, pin: USER_PIN }), 'key-unusable');
  });

  it('certificate that does not carry the token key → key-mismatch', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    // A self-signed certificate for a different key, made with openssl (independent of the code under test).
    const { execFileSync } = await import('node:child_process');
    const keyPem = join(hsm.dir, 'other.key');
    const certPem = join(hsm.dir, 'other.crt');
    writeFileSync(keyPem, other.privateKey.export({ format: 'pem', type: 'pkcs8' }));
    execFileSync('openssl', ['req', '-x509', '-new', '-key', keyPem, '-subj', '/CN=other', '-days', '1', '-out', certPem]);
    expect(new X509Certificate(execFileSync('cat', [certPem])).publicKey.equals(other.publicKey)).toBe(true);
    await expectFailure(loadSigner({ pkcs11Uri: key.uri, module: hsm.modulePath, pin: USER_PIN }, [certPem]), 'key-mismatch');
  });

  it('token removed while running → 503 for the request and every later one; no signature ever returned', async () => {
    const signer = await openPkcs11Signer({ uri: key.uri, module: hsm.modulePath, pin: USER_PIN, retryIntervalMs: 0 });
    const ok = await signer.sign(Uint8Array.of(1));
    expect(verify('sha256', Uint8Array.of(1), { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, ok)).toBe(true);
    // Pull the token: SoftHSM2 keeps nothing once its directory is gone.
    for (const d of readdirSync(hsm.tokenDir)) rmSync(join(hsm.tokenDir, d), { recursive: true, force: true });
    const first = await failure(signer.sign(Uint8Array.of(2)));
    expect(['session-lost', 'device-error']).toContain(first.failure);
    for (let i = 0; i < 3; i++) {
      const later = await failure(signer.sign(Uint8Array.of(3)));
      expect(['session-lost', 'token-not-found', 'key-not-found']).toContain(later.failure);
    }
    // A new process-level attempt to open it fails at start too.
    await failure(loadSigner({ pkcs11Uri: key.uri, module: hsm.modulePath, pin: USER_PIN }));
  });

  it('sessions closed under it (token reset) → 503 for that request, then recovers with the SAME key', async () => {
    const signer = await openPkcs11Signer({ uri: key.uri, module: hsm.modulePath, pin: USER_PIN, retryIntervalMs: 0 });
    await signer.sign(Uint8Array.of(1));
    // Closing every session also ends the login: the next call hits CKR_SESSION_HANDLE_INVALID.
    hsm.module.lib.C_CloseAllSessions(hsm.module.findToken({ token: 'fc', vendor: {} }).slot);
    await expectFailure(signer.sign(Uint8Array.of(2)), 'session-lost');
    const sig = await signer.sign(Uint8Array.of(3));
    expect(verify('sha256', Uint8Array.of(3), { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
  });

  it('the same label now naming a different key after a reset → key-mismatch, not a signature', async () => {
    const signer = await openPkcs11Signer({ uri: 'pkcs11:token=fc;object=voucher', module: hsm.modulePath, pin: USER_PIN, retryIntervalMs: 0 });
    await signer.sign(Uint8Array.of(1));
    // Swap the key: destroy the old pair and make a new one with the same label (different id).
    const { default: pkcs11js } = await import('pkcs11js');
    const lib = hsm.module.lib;
    const token = hsm.module.findToken({ token: 'fc', vendor: {} });
    const s = lib.C_OpenSession(token.slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    lib.C_FindObjectsInit(s, [{ type: pkcs11js.CKA_LABEL, value: 'voucher' }]);
    for (const h of lib.C_FindObjects(s, 10)) { lib.C_FindObjectsFinal(s); lib.C_DestroyObject(s, h); lib.C_FindObjectsInit(s, [{ type: pkcs11js.CKA_LABEL, value: 'voucher' }]); }
    lib.C_FindObjectsFinal(s);
    lib.C_CloseSession(s);
    hsm.keygen('fc', 'voucher', 'P-256');
    lib.C_CloseAllSessions(token.slot);
    await failure(signer.sign(Uint8Array.of(2))); // the reset itself
    await expectFailure(signer.sign(Uint8Array.of(3)), 'key-mismatch');
    await expectFailure(signer.sign(Uint8Array.of(4)), 'key-mismatch');
  });

  it('module finalized under a signer → 503, no crash', async () => {
    const signer = await openPkcs11Signer({ uri: key.uri, module: hsm.modulePath, pin: USER_PIN, retryIntervalMs: 0 });
    hsm.module.finalize();
    await expectFailure(signer.sign(Uint8Array.of(1)), 'session-lost');
  });
});
