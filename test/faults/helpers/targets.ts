/**
 * Every HTTP endpoint of the registrar and the MASA as a fuzz target: who calls it (TLS client
 * identity), the valid messages mutations start from, and which mutation families are safe to
 * apply (`structuralOnly`: unsigned JSON bodies sent with real credentials, where a bit flip
 * could turn a valid request into another valid request — those get only shape attacks).
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type https from 'node:https';
import { loadSoftwareSigner, SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { signVoucherArtifact } from '@brski/shared/envelope/artifact';
import { VOUCHER_MEDIA_TYPE, VOUCHER_FORMATS, type VoucherFormat } from '@brski/shared/media';
import { createCsr } from '@brski/shared/pki/csr';
import { idevidIssuerOf } from '@brski/shared/pki/identity';
import type { E2ePki } from '../../e2e/helpers/stack.ts';
import { builtPvr, validPvr } from './client.ts';

export type Origin = 'registrar' | 'registrarAdmin' | 'masa' | 'masaAdmin';
export type Caller = 'pledge' | 'ldevid' | 'registrar' | 'station' | 'none';

export interface Target {
  name: string;
  origin: Origin;
  method: string;
  path: string;
  caller: Caller;
  /** Valid bodies with their (correct) content type. */
  bases: Array<{ body: Uint8Array; type: string }>;
  headers?: Record<string, string>;
  structuralOnly?: boolean;
  /** GET resources: hostile variants are other methods and junk queries/headers. */
  get?: boolean;
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const TELEMETRY_JSON = text('{"version":1,"status":true}');
// {"version": 1, "status": true} in CBOR with text keys.
const TELEMETRY_CBOR = Uint8Array.from([0xa2, 0x67, ...text('version'), 0x01, 0x66, ...text('status'), 0xf5]);

export async function csrBase64(): Promise<Uint8Array> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = await createCsr([['CN', 'fuzz']], new SoftwareSigner(privateKey));
  return text(Buffer.from(der).toString('base64')); // one line: no whitespace a flip could turn into other whitespace
}

/** A registrar-signed RVR wrapping pledge 0's PVR, as the registrar would send it. */
export async function validRvr(pki: E2ePki, format: VoucherFormat): Promise<Uint8Array> {
  const m = pki.manifest;
  const pvr = await builtPvr(pki, 0, format);
  const signer = loadSoftwareSigner(m.registrar.key, [m.registrar.cert, m.domainCa.cert]);
  const idevid = new X509Certificate(readFileSync(m.pledges[0]!.cert));
  const data = {
    assertion: 'proximity' as const, serialNumber: m.pledges[0]!.serial, createdOn: new Date().toISOString(),
    nonce: pvr.nonce, idevidIssuer: idevidIssuerOf(idevid), priorSignedVoucherRequest: pvr.bytes,
  };
  return signVoucherArtifact(format, 'voucher-request', data, signer, format === 'cose' ? { unprotectedX5bag: signer.certificates } : {});
}

export async function buildTargets(pki: E2ePki, rvrs: Record<VoucherFormat, Uint8Array>): Promise<Target[]> {
  const pvrs = await Promise.all(VOUCHER_FORMATS.map(async (f) => ({ body: await validPvr(pki, 0, f), type: VOUCHER_MEDIA_TYPE[f] })));
  const rvrBases = VOUCHER_FORMATS.map((f) => ({ body: rvrs[f], type: VOUCHER_MEDIA_TYPE[f] }));
  const csr = { body: await csrBase64(), type: 'application/pkcs10' };
  const telemetry = [{ body: TELEMETRY_JSON, type: 'application/json' }, { body: TELEMETRY_CBOR, type: 'application/cbor' }];
  const factory = { body: text(JSON.stringify({ serialNumber: 'FUZZ-000001', csr: Buffer.from(csr.body).toString() })), type: 'application/json' };
  const est = '/.well-known/est';
  const brski = '/.well-known/brski';
  const json = (o: unknown) => ({ body: text(JSON.stringify(o)), type: 'application/json' });
  return [
    // Registrar, pledge-facing.
    { name: 'reg requestvoucher', origin: 'registrar', method: 'POST', path: `${brski}/requestvoucher`, caller: 'pledge', bases: pvrs },
    { name: 'reg requestvoucher (legacy EST path)', origin: 'registrar', method: 'POST', path: `${est}/requestvoucher`, caller: 'pledge', bases: pvrs },
    { name: 'reg requestvoucher, no client cert', origin: 'registrar', method: 'POST', path: `${brski}/requestvoucher`, caller: 'none', bases: pvrs },
    { name: 'reg voucher_status', origin: 'registrar', method: 'POST', path: `${brski}/voucher_status`, caller: 'pledge', bases: telemetry },
    { name: 'reg enrollstatus', origin: 'registrar', method: 'POST', path: `${brski}/enrollstatus`, caller: 'pledge', bases: telemetry },
    { name: 'reg enrollstatus, no client cert', origin: 'registrar', method: 'POST', path: `${brski}/enrollstatus`, caller: 'none', bases: telemetry },
    { name: 'reg simpleenroll', origin: 'registrar', method: 'POST', path: `${est}/simpleenroll`, caller: 'pledge', bases: [csr] },
    { name: 'reg simplereenroll (LDevID)', origin: 'registrar', method: 'POST', path: `${est}/simplereenroll`, caller: 'ldevid', bases: [csr] },
    { name: 'reg simplereenroll, no client cert', origin: 'registrar', method: 'POST', path: `${est}/simplereenroll`, caller: 'none', bases: [csr] },
    { name: 'reg cacerts', origin: 'registrar', method: 'GET', path: `${est}/cacerts`, caller: 'none', bases: [csr], get: true },
    { name: 'reg csrattrs', origin: 'registrar', method: 'GET', path: `${est}/csrattrs`, caller: 'pledge', bases: [csr], get: true },
    { name: 'reg crl', origin: 'registrar', method: 'GET', path: `${est}/crl`, caller: 'none', bases: [csr], get: true },
    // Registrar admin: valid token only where even a valid body changes nothing (unknown certificate).
    { name: 'reg admin revoke (token)', origin: 'registrarAdmin', method: 'POST', path: '/admin/certificates/FFFFFFFF01/revoke', caller: 'none',
      bases: [json({ reason: 'keyCompromise' })], headers: { authorization: 'TOKEN' }, structuralOnly: true },
    { name: 'reg admin allowlist (no token)', origin: 'registrarAdmin', method: 'POST', path: '/admin/allowlist', caller: 'none', bases: [json({ entry: 'FUZZ-*' })] },
    { name: 'reg admin approve (bad token)', origin: 'registrarAdmin', method: 'POST', path: '/admin/pledges/FUZZ-1/approve', caller: 'none',
      bases: [json({ by: 'fuzz' })], headers: { authorization: 'Bearer not-the-token-at-all' } },
    // MASA.
    { name: 'masa requestvoucher', origin: 'masa', method: 'POST', path: `${brski}/requestvoucher`, caller: 'registrar', bases: rvrBases },
    { name: 'masa requestvoucher, no client cert', origin: 'masa', method: 'POST', path: `${brski}/requestvoucher`, caller: 'none', bases: rvrBases },
    { name: 'masa requestauditlog', origin: 'masa', method: 'POST', path: `${brski}/requestauditlog`, caller: 'registrar', bases: rvrBases },
    { name: 'masa factory (station)', origin: 'masa', method: 'POST', path: '/factory/idevid', caller: 'station', bases: [factory], structuralOnly: true },
    { name: 'masa factory (registrar cert)', origin: 'masa', method: 'POST', path: '/factory/idevid', caller: 'registrar', bases: [factory] },
    { name: 'masa factory, no client cert', origin: 'masa', method: 'POST', path: '/factory/idevid', caller: 'none', bases: [factory] },
    { name: 'masa admin policy (token)', origin: 'masaAdmin', method: 'PUT', path: '/admin/devices/FUZZ-NOPE/policy', caller: 'none',
      bases: [json({ policy: 'open' })], headers: { authorization: 'TOKEN' }, structuralOnly: true },
    { name: 'masa admin import (no token)', origin: 'masaAdmin', method: 'PUT', path: '/admin/devices/FUZZ-2', caller: 'none',
      bases: [json({ certificate: 'AAAA', productLine: 'psim' })] },
  ];
}

export type Agents = Record<Caller, https.Agent>;
