/**
 * Record-layer checks for what the join proxy relays. The proxy never decrypts anything; it only
 * frames the byte stream into TLS records (RFC 8446 §5.1 / RFC 5246 §6.2) or looks at the first
 * byte of a DTLS datagram, so it can refuse to relay anything that is not (D)TLS — e.g. plaintext
 * HTTP or CoAP aimed at the registrar through it — and count record types for observability.
 */

/** TLS record content types a BRSKI connection may carry (heartbeat 24 is refused). */
export const TLS_CONTENT_TYPES: Readonly<Record<number, string>> = {
  20: 'change_cipher_spec', 21: 'alert', 22: 'handshake', 23: 'application_data',
};

/** Largest TLSCiphertext.length (TLS 1.2: 2^14 + 2048; TLS 1.3 is smaller). */
const MAX_RECORD = 16384 + 2048;

export class NotTlsError extends Error {}

/**
 * Frames one direction of a TLS byte stream. `feed` throws NotTlsError at the first byte that
 * cannot be part of a TLS record stream; `firstMustBeHandshake` for the client→server direction.
 */
export class TlsRecordFramer {
  readonly #firstMustBeHandshake: boolean;
  readonly #header = Buffer.alloc(5);
  #headerLen = 0;
  #bodyLeft = 0;
  /** Records whose header was seen, by content type. */
  readonly counts = new Map<number, number>();
  records = 0;

  constructor(opts: { firstMustBeHandshake?: boolean } = {}) {
    this.#firstMustBeHandshake = opts.firstMustBeHandshake ?? false;
  }

  feed(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.#bodyLeft > 0) {
        const n = Math.min(this.#bodyLeft, chunk.length - i);
        this.#bodyLeft -= n;
        i += n;
        continue;
      }
      this.#header[this.#headerLen++] = chunk[i++]!;
      // Fail on the first bad byte rather than after five, so a plaintext request is refused before any of it is relayed.
      this.#checkPartial();
      if (this.#headerLen < 5) continue;
      const type = this.#header[0]!;
      const length = this.#header.readUInt16BE(3);
      if (length === 0 && type !== 23) throw new NotTlsError(`empty ${TLS_CONTENT_TYPES[type]} record`);
      if (length > MAX_RECORD) throw new NotTlsError(`record length ${length} exceeds ${MAX_RECORD}`);
      this.records++;
      this.counts.set(type, (this.counts.get(type) ?? 0) + 1);
      this.#headerLen = 0;
      this.#bodyLeft = length;
    }
  }

  #checkPartial(): void {
    const h = this.#header;
    if (this.#headerLen === 1) {
      const type = h[0]!;
      if (TLS_CONTENT_TYPES[type] === undefined) throw new NotTlsError(`byte 0x${type.toString(16).padStart(2, '0')} is not a TLS content type`);
      if (this.records === 0 && this.#firstMustBeHandshake && type !== 22) throw new NotTlsError('stream does not start with a TLS handshake record');
    } else if (this.#headerLen === 2 && h[1] !== 3) {
      throw new NotTlsError(`record version major ${h[1]} is not 3`);
    } else if (this.#headerLen === 3 && h[2]! > 4) {
      throw new NotTlsError(`record version 3.${h[2]} is unknown`);
    }
  }
}

/**
 * Classifies one datagram as DTLS (RFC 6347 §4.1 / RFC 9147 §4): a DTLSPlaintext header with a
 * content type 20–23 or 25 (ack) and version major 0xfe, or a DTLS 1.3 unified header (001xxxxx).
 * Returns the content type (or 'dtls13-ciphertext'), undefined when it is not DTLS.
 */
export function dtlsRecordType(d: Uint8Array): number | 'dtls13-ciphertext' | undefined {
  if (d.length < 1) return undefined;
  const b = d[0]!;
  if ((b & 0xe0) === 0x20) return d.length >= 2 ? 'dtls13-ciphertext' : undefined;
  if ((b >= 20 && b <= 23) || b === 25) return d.length >= 13 && d[1] === 0xfe ? b : undefined;
  return undefined;
}
