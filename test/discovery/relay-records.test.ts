/** Record framing (TLS) and the stateful DTLS datagram relay of the join proxy. */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { NotTlsError, TlsRecordFramer, dtlsRecordType } from '../../join-proxy/src/records.ts';
import { UdpRelay } from '../../join-proxy/src/udp-relay.ts';
import { RegistrarLocator } from '../../join-proxy/src/upstream.ts';
import { candidateUrls } from '../../shared/src/discovery/candidates.ts';
import type { ServiceCandidate } from '../../shared/src/discovery/mdns.ts';

const record = (type: number, body: number[]) => Buffer.from([type, 3, 3, body.length >> 8, body.length & 0xff, ...body]);

describe('TlsRecordFramer', () => {
  it('frames records split at every byte boundary', () => {
    const stream = Buffer.concat([record(22, [1, 2, 3]), record(20, [1]), record(23, Array(300).fill(7)), record(21, [2, 40])]);
    const f = new TlsRecordFramer({ firstMustBeHandshake: true });
    for (const b of stream) f.feed(Buffer.from([b]));
    expect(f.records).toBe(4);
    expect([...f.counts.entries()].sort()).toEqual([[20, 1], [21, 1], [22, 1], [23, 1]]);
  });

  it.each([
    ['plaintext HTTP', Buffer.from('GET / HTTP/1.1\r\n'), /not a TLS content type/],
    ['heartbeat record', record(24, [1]), /not a TLS content type/],
    ['SSLv2-style / wrong major version', Buffer.from([22, 2, 0, 0, 1, 0]), /major/],
    ['unknown minor version', Buffer.from([22, 3, 9, 0, 1, 0]), /unknown/],
    ['oversized record', Buffer.from([22, 3, 3, 0x48, 0x01]), /exceeds/],
    ['empty handshake record', Buffer.from([22, 3, 3, 0, 0]), /empty/],
  ])('refuses %s', (_n, bytes, msg) => {
    const f = new TlsRecordFramer({ firstMustBeHandshake: true });
    expect(() => f.feed(bytes)).toThrow(NotTlsError);
    expect(() => new TlsRecordFramer().feed(bytes)).toThrow(msg);
  });

  it('refuses application data before the handshake only where the handshake must come first', () => {
    expect(() => new TlsRecordFramer({ firstMustBeHandshake: true }).feed(record(23, [1]))).toThrow(/handshake/);
    expect(() => new TlsRecordFramer().feed(record(23, [1]))).not.toThrow();
  });
});

describe('dtlsRecordType', () => {
  const dtls = (type: number) => Buffer.from([type, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 9]);
  it('recognises DTLS 1.2 records and the DTLS 1.3 unified header', () => {
    expect(dtlsRecordType(dtls(22))).toBe(22);
    expect(dtlsRecordType(dtls(23))).toBe(23);
    expect(dtlsRecordType(dtls(25))).toBe(25);
    expect(dtlsRecordType(Buffer.from([0x2c, 0x01, 0x02]))).toBe('dtls13-ciphertext');
  });
  it('rejects plain CoAP, TLS (non-DTLS) headers and short datagrams', () => {
    expect(dtlsRecordType(Buffer.from([0x44, 0x01, 0x12, 0x34, 0xb2]))).toBeUndefined(); // CoAP CON GET
    expect(dtlsRecordType(Buffer.from([22, 3, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]))).toBeUndefined();
    expect(dtlsRecordType(Buffer.from([22, 0xfe, 0xfd]))).toBeUndefined();
    expect(dtlsRecordType(Buffer.alloc(0))).toBeUndefined();
  });
});

describe('UdpRelay (stateful DTLS join proxy)', () => {
  const open: Array<{ close(): unknown }> = [];
  afterEach(async () => { for (const s of open.splice(0)) await s.close(); });

  const hello = (tag: number) => Buffer.from([22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, tag]);
  const bind = async (): Promise<Socket> => {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    open.push({ close: () => new Promise<void>((r) => s.close(() => r())) });
    return s;
  };
  const next = (s: Socket, ms = 1000) => new Promise<Buffer | undefined>((resolve) => {
    const t = setTimeout(() => { s.off('message', on); resolve(undefined); }, ms);
    const on = (m: Buffer) => { clearTimeout(t); resolve(m); };
    s.once('message', on);
  });

  async function setup(idleTimeoutMs = 60_000) {
    // The "registrar": echoes each datagram prefixed with the source port it came from.
    const registrar = await bind();
    const sources: number[] = [];
    registrar.on('message', (m, r) => { sources.push(r.port); registrar.send(Buffer.concat([Buffer.from(`${r.port}:`), m]), r.port, r.address); });
    const relay = new UdpRelay({
      listen: { host: '127.0.0.1', port: 0 }, idleTimeoutMs,
      upstream: new RegistrarLocator({ protocol: 'udp', target: { host: '127.0.0.1', port: registrar.address().port } }),
    });
    await relay.listen();
    open.push(relay);
    return { relay, sources };
  }

  it('keeps one upstream socket per pledge address/port and routes answers back to the right pledge', async () => {
    const { relay, sources } = await setup();
    const a = await bind();
    const b = await bind();
    a.send(hello(1), relay.port, '127.0.0.1');
    const ra = await next(a);
    b.send(hello(2), relay.port, '127.0.0.1');
    const rb = await next(b);
    a.send(Buffer.from([23, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 3]), relay.port, '127.0.0.1');
    const ra2 = await next(a);
    expect(ra?.subarray(-1)[0]).toBe(1);
    expect(rb?.subarray(-1)[0]).toBe(2);
    expect(ra2?.subarray(-1)[0]).toBe(3);
    // Two pledges → two upstream source ports; pledge a's second datagram reused its session.
    expect(new Set(sources).size).toBe(2);
    expect(sources[0]).toBe(sources[2]);
    expect(relay.stats.sessions).toBe(2);
    expect(relay.stats.datagrams).toEqual({ 'to-registrar': 3, 'to-pledge': 3 });
  });

  it('drops plain CoAP and session-less application data without creating state', async () => {
    const { relay, sources } = await setup();
    const a = await bind();
    a.send(Buffer.from([0x44, 0x01, 0x12, 0x34, 0xb2, 0x2e, 0x77]), relay.port, '127.0.0.1');
    a.send(Buffer.from([23, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 3]), relay.port, '127.0.0.1');
    expect(await next(a, 300)).toBeUndefined();
    expect(sources).toEqual([]);
    expect(relay.stats.sessions).toBe(0);
    expect(relay.stats.dropped).toBe(2);
  });

  it('evicts idle sessions; the next handshake opens a fresh upstream socket', async () => {
    const { relay, sources } = await setup(10_000);
    const a = await bind();
    a.send(hello(1), relay.port, '127.0.0.1');
    await next(a);
    relay.sweep(Date.now() + 5_000);
    expect(relay.stats.sessions).toBe(1);
    relay.sweep(Date.now() + 10_001);
    expect(relay.stats.sessions).toBe(0);
    expect(relay.stats.evicted).toBe(1);
    a.send(hello(4), relay.port, '127.0.0.1');
    expect((await next(a))?.subarray(-1)[0]).toBe(4);
    expect(sources).toHaveLength(2);
    expect(sources[0]).not.toBe(sources[1]);
  });

  it('refuses new sessions over the limit', async () => {
    const registrar = await bind();
    const relay = new UdpRelay({ listen: { host: '127.0.0.1', port: 0 }, maxSessions: 1,
      upstream: new RegistrarLocator({ protocol: 'udp', target: { host: '127.0.0.1', port: registrar.address().port } }) });
    await relay.listen();
    open.push(relay);
    const a = await bind();
    const b = await bind();
    a.send(hello(1), relay.port, '127.0.0.1');
    b.send(hello(2), relay.port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 200));
    expect(relay.stats.sessions).toBe(1);
    expect(relay.stats.dropped).toBe(1);
  });
});

describe('candidateUrls', () => {
  const c = (type: ServiceCandidate['type'], name: string, addresses: string[], port = 8443): ServiceCandidate =>
    ({ type, protocol: 'tcp', name, host: 'h', port, addresses, txt: {} });
  it('orders registrars before proxies (or the reverse), keeps heard-first order, skips link-local IPv6 and duplicates', () => {
    const found = [c('brski-proxy', 'p1', ['10.0.0.1', 'fe80::1', '2001:db8::1'], 4443), c('brski-registrar', 'r1', ['10.0.1.1']),
      c('brski-proxy', 'p2', ['10.0.0.2', '10.0.0.2'], 4443)];
    expect(candidateUrls(found)).toEqual(['https://10.0.1.1:8443', 'https://10.0.0.1:4443', 'https://[2001:db8::1]:4443', 'https://10.0.0.2:4443']);
    expect(candidateUrls(found, 'coaps', 'proxy')[0]).toBe('coaps://10.0.0.1:4443');
  });
});
