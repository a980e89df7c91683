/** Conversions between the two ECDSA signature encodings (IEEE P1363 r||s and DER Ecdsa-Sig-Value). */

function derInteger(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  let body = bytes.subarray(i);
  if (body[0]! & 0x80) body = Uint8Array.of(0, ...body);
  return Uint8Array.of(0x02, body.length, ...body);
}

export function p1363ToDer(sig: Uint8Array): Uint8Array {
  const n = sig.length / 2;
  const r = derInteger(sig.subarray(0, n));
  const s = derInteger(sig.subarray(n));
  const len = r.length + s.length;
  const head = len < 0x80 ? Uint8Array.of(0x30, len) : Uint8Array.of(0x30, 0x81, len);
  const out = new Uint8Array(head.length + len);
  out.set(head, 0); out.set(r, head.length); out.set(s, head.length + r.length);
  return out;
}

export function derToP1363(der: Uint8Array, coordinateBytes: number): Uint8Array {
  let p = 0;
  if (der[p++] !== 0x30) throw new Error('ECDSA signature: SEQUENCE expected');
  let len = der[p++]!;
  if (len & 0x80) { const n = len & 0x7f; len = 0; for (let k = 0; k < n; k++) len = (len << 8) | der[p++]!; }
  const out = new Uint8Array(coordinateBytes * 2);
  for (let part = 0; part < 2; part++) {
    if (der[p++] !== 0x02) throw new Error('ECDSA signature: INTEGER expected');
    const l = der[p++]!;
    let v = der.subarray(p, p + l); p += l;
    while (v.length > coordinateBytes && v[0] === 0) v = v.subarray(1);
    if (v.length > coordinateBytes) throw new Error('ECDSA signature: integer too long');
    out.set(v, part * coordinateBytes + coordinateBytes - v.length);
  }
  return out;
}
