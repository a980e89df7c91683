/**
 * THE list of every Redis key the MASA uses: its name, Redis type and expiry. Nothing else in the
 * MASA builds key strings.
 *
 * Per-device keys carry the device serial as a cluster hash tag `{…}` so that the voucher commit
 * (device + owners + first-use + nonce + audit + head) runs as one Lua script on one slot.
 * The serial is percent-encoded inside the tag so a serial containing `{`, `}` or `:` cannot
 * break out of it or collide with another key.
 */

export const KEY_PREFIX = 'masa';

function tag(value: string): string {
  return `{${encodeURIComponent(value)}}`;
}

export const keys = {
  /** HASH, no expiry. Fields: record (immutable DeviceRecord JSON), keyFingerprint, revoked ('0'|'1'),
   *  revokedAt, revocationReason, policy, vouchers (count of vouchers issued). */
  device: (serial: string) => `${KEY_PREFIX}:dev:${tag(serial)}`,
  /** SET of base64 domainIDs named by sales records (admin claims), no expiry. */
  owners: (serial: string) => `${KEY_PREFIX}:dev:${tag(serial)}:owners`,
  /** STRING: domainID that won the device under first-use, no expiry. */
  firstUse: (serial: string) => `${KEY_PREFIX}:dev:${tag(serial)}:first-use`,
  /** STRING '1', EXPIRES after the configured nonce TTL (voucher.nonceTtlSeconds). nonceKey = hex of the nonce bytes. */
  nonce: (serial: string, nonceKey: string) => `${KEY_PREFIX}:dev:${tag(serial)}:nonce:${nonceKey}`,
  /** LIST of sealed AuditEntry JSON, oldest first, no expiry. */
  audit: (serial: string) => `${KEY_PREFIX}:dev:${tag(serial)}:audit`,
  /** STRING: hash of the newest audit entry (the chain head), no expiry. */
  auditHead: (serial: string) => `${KEY_PREFIX}:dev:${tag(serial)}:audit-head`,
  /** STRING ownership policy of a product line (admin override of the config), no expiry. */
  linePolicy: (line: string) => `${KEY_PREFIX}:policy:line:${encodeURIComponent(line)}`,
  /** STRING counter for one fixed rate window of a factory station; EXPIRES 2 × window. */
  stationRate: (station: string, windowIndex: number) => `${KEY_PREFIX}:station:${tag(station)}:rate:${windowIndex}`,
  /** ZSET of IssuanceRecord JSON scored by issuance time (ms) for one station, no expiry. */
  stationIssued: (station: string) => `${KEY_PREFIX}:station:${tag(station)}:issued`,
  /** ZSET of IssuanceRecord JSON scored by issuance time (ms), all stations, no expiry. */
  issued: () => `${KEY_PREFIX}:issued`,
} as const;
