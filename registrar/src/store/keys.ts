/**
 * Every Redis key the registrar uses, its type and its expiry — the one place to look.
 *
 * All keys of one registrar domain share the hash tag `{<domain>}`, so they live in one
 * cluster slot and the multi-key MULTI blocks / Lua scripts in redis.ts work unchanged on
 * Redis Cluster. A registrar serves one site (thousands of pledges, not millions), so one
 * slot per domain is ample and keeps every update atomic.
 *
 * | key                              | type   | expiry            | content |
 * |----------------------------------|--------|-------------------|---------|
 * | P{d}:pledge:<serial>             | hash   | none              | PledgeRecord, one JSON value per field |
 * | P{d}:events:<serial>             | list   | none (LTRIM 200)  | PledgeEvent JSON, oldest first |
 * | P{d}:pledges                     | zset   | none              | serial scored by last update (ms) |
 * | P{d}:approvals                   | hash   | none              | serial -> ApprovalRecord JSON |
 * | P{d}:allowlist                   | set    | none              | serials / glob patterns |
 * | P{d}:job:<pvr sha256 hex>        | string | voucherJobTtl     | VoucherJob JSON (bytes base64) |
 * | P{d}:voucher:<serial>            | string | none              | VoucherRecord JSON (bytes base64) |
 * | P{d}:certserial                  | string | none              | INCR counter for certificate serials |
 * | P{d}:cert:<serial hex>           | hash   | none              | CertificateRecord, one JSON value per field |
 * | P{d}:certs:<pledge serial>       | list   | none              | certificate serials of a pledge, issuance order |
 * | P{d}:revoked                     | hash   | none              | cert serial -> RevocationRecord JSON |
 * | P{d}:revver                      | string | none              | INCR on every revocation |
 * | P{d}:crlnumber                   | string | none              | INCR counter for CRL numbers |
 * | P{d}:crl                         | hash   | none              | der (base64), crlNumber, version, nextUpdate |
 * | P{d}:certlog                     | list   | none              | every certificate serial, newest recording first (LPUSH) |
 * | P{d}:admission                   | string | none              | AdmissionModeRecord JSON (operator-set mode; absent = config) |
 * | P{d}:policylog                   | list   | none (LTRIM 200)  | PolicyChangeRecord JSON, newest first |
 *
 * P = configurable prefix (default `brski:registrar:`), d = domain name.
 */

export interface RegistrarKeys {
  pledge(serial: string): string;
  events(serial: string): string;
  pledgeIndex: string;
  approvals: string;
  allowlist: string;
  job(pvrDigest: string): string;
  voucher(serial: string): string;
  certSerial: string;
  cert(serialNumber: string): string;
  certsOf(pledgeSerial: string): string;
  revoked: string;
  revocationVersion: string;
  crlNumber: string;
  crl: string;
  certLog: string;
  admissionMode: string;
  policyLog: string;
}

/** Serials are attacker-influenced text: keep them from breaking out of the key layout. */
function safe(part: string): string {
  return encodeURIComponent(part);
}

export function registrarKeys(domain = 'default', prefix = 'brski:registrar:'): RegistrarKeys {
  const base = `${prefix}{${safe(domain)}}:`;
  return {
    pledge: (s) => `${base}pledge:${safe(s)}`,
    events: (s) => `${base}events:${safe(s)}`,
    pledgeIndex: `${base}pledges`,
    approvals: `${base}approvals`,
    allowlist: `${base}allowlist`,
    job: (d) => `${base}job:${safe(d)}`,
    voucher: (s) => `${base}voucher:${safe(s)}`,
    certSerial: `${base}certserial`,
    cert: (n) => `${base}cert:${safe(n)}`,
    certsOf: (s) => `${base}certs:${safe(s)}`,
    revoked: `${base}revoked`,
    revocationVersion: `${base}revver`,
    crlNumber: `${base}crlnumber`,
    crl: `${base}crl`,
    certLog: `${base}certlog`,
    admissionMode: `${base}admission`,
    policyLog: `${base}policylog`,
  };
}
