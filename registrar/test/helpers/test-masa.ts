/**
 * A small MASA for registrar tests, signing with the shared core. It does the MASA checks that
 * matter to the registrar's output (RVR signature + cmcRA, prior PVR signature with the pledge's
 * key, serial and nonce consistency, proximity cert in the RVR chain) and can be told to
 * misbehave: refuse (any status, extra headers such as Retry-After or Location), hang, go down, pin
 * another domain or a given certificate, echo a wrong nonce, answer in a format of its own choosing.
 */
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import type https from 'node:https';
import Koa from 'koa';
import { SoftwareSigner, parseCertificatesPem } from '@brski/shared/crypto/software-signer';
import { signVoucherArtifact, verifyVoucherArtifact } from '@brski/shared/envelope/artifact';
import { closeGracefully, createTlsServer, listen } from '@brski/shared/http/server';
import { peerCertificates, readBody } from '@brski/shared/http/middleware';
import { formatFromMediaType, negotiateVoucherFormat, VOUCHER_MEDIA_TYPE, type VoucherFormat } from '@brski/shared/media';
import { domainIdOf, serialNumberOf, spkiDer } from '@brski/shared/pki/identity';
import { OID } from '@brski/shared/pki/oids';
import { encodeAuditLog } from '@brski/shared/voucher/telemetry';
import type { Voucher, VoucherRequest } from '@brski/shared/voucher/model';
import type { Fixture } from './fixture.ts';

export type MasaMode =
  | { kind: 'ok' }
  | { kind: 'refuse'; status: number; text: string; headers?: Record<string, string> }
  | { kind: 'hang' }
  | { kind: 'wrong-pin' }
  | { kind: 'wrong-nonce' }
  /** Pin this certificate instead of the domain CA. */
  | { kind: 'pin'; cert: X509Certificate }
  /** Answer in this format whatever the Accept says (digest §3.2: the MASA may choose). */
  | { kind: 'answer-as'; format: VoucherFormat };

export interface TestMasa {
  port: number;
  mode: MasaMode;
  calls: number;
  lastRvr?: { format: string; bytes: Uint8Array; data: VoucherRequest; embedded: X509Certificate[] };
  lastClientCert?: X509Certificate;
  /** Accept header of the last requestvoucher. */
  lastAccept?: string;
  /** Extra audit-log events (e.g. a foreign domain). */
  extraAuditEvents: Array<{ date: string; domainID: string; nonce: string | null; assertion: string }>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestMasa(fx: Fixture, opts: { noStart?: boolean } = {}): Promise<TestMasa> {
  const signerCert = new X509Certificate(fx.pem('masa-signer.pem'));
  const masaSigner = new SoftwareSigner(createPrivateKey(fx.pem('masa-signer.key')), [signerCert]);
  const idevidCa = new X509Certificate(fx.pem('idevid-ca.pem'));
  const domainCa = fx.domainCa;
  const other = await fx.foreignRegistrarCert();
  const pending = new Set<() => void>();

  const state: TestMasa = {
    port: fx.masaPort, mode: { kind: 'ok' }, calls: 0, extraAuditEvents: [],
    start: async () => undefined, stop: async () => undefined,
  };

  async function checkRvr(format: 'cms' | 'jws' | 'cose', body: Uint8Array) {
    const rvr = await verifyVoucherArtifact(format, body, {
      anchors: [domainCa], requireEku: OID.cmcRA, kind: 'voucher-request', strict: true, role: 'rvr',
    });
    const data = rvr.decoded.data as VoucherRequest;
    if (!data.priorSignedVoucherRequest) throw new Error('no prior-signed-voucher-request');
    const pledgeCert = rvr.envelope.embedded.find((c) => serialNumberOf(c) === data.serialNumber);
    const pvr = await verifyVoucherArtifact(format, data.priorSignedVoucherRequest, {
      anchors: [idevidCa], extraCertificates: rvr.envelope.embedded, ...(format === 'cose' && pledgeCert ? { signerCertificate: pledgeCert, ignoreEmbedded: true } : {}),
      kind: 'voucher-request', strict: false, role: 'pvr',
    });
    const p = pvr.decoded.data as VoucherRequest;
    if (serialNumberOf(pvr.envelope.signer) !== data.serialNumber) throw new Error('RVR serial is not the PVR signer serial');
    if (Buffer.compare(Buffer.from(p.nonce ?? []), Buffer.from(data.nonce ?? [])) !== 0) throw new Error('nonce differs');
    const prox = p.proximityRegistrarCert ? new X509Certificate(p.proximityRegistrarCert) : undefined;
    if (prox && !rvr.envelope.chain.some((c) => Buffer.from(spkiDer(c)).equals(Buffer.from(spkiDer(prox))))) throw new Error('proximity cert not in RVR chain');
    return { rvr, data };
  }

  const app = new Koa();
  app.use(async (ctx) => {
    state.lastClientCert = peerCertificates(ctx)[0];
    const body = new Uint8Array(await readBody(ctx, 256 * 1024));
    const format = formatFromMediaType(ctx.get('content-type'));
    if (!format) { ctx.status = 415; ctx.body = 'unsupported'; return; }
    if (ctx.path === '/.well-known/brski/requestvoucher') {
      state.calls++;
      const mode = state.mode;
      if (mode.kind === 'hang') { await new Promise<void>((r) => { pending.add(r); setTimeout(r, 30_000).unref(); }); ctx.status = 503; return; }
      if (mode.kind === 'refuse') {
        ctx.status = mode.status; ctx.type = 'text/plain'; ctx.body = mode.text;
        for (const [k, v] of Object.entries(mode.headers ?? {})) ctx.set(k, v);
        return;
      }
      let checked;
      try {
        checked = await checkRvr(format, body);
      } catch (err) {
        ctx.status = 403; ctx.type = 'text/plain'; ctx.body = `RVR refused: ${(err as Error).message}`; return;
      }
      state.lastRvr = { format, bytes: body, data: checked.data, embedded: checked.rvr.envelope.embedded };
      const voucher: Voucher = {
        assertion: 'proximity', createdOn: new Date().toISOString(), serialNumber: checked.data.serialNumber,
        pinnedDomainCert: new Uint8Array((mode.kind === 'wrong-pin' ? other : mode.kind === 'pin' ? mode.cert : domainCa).raw),
        ...(checked.data.idevidIssuer ? { idevidIssuer: checked.data.idevidIssuer } : {}),
        ...(checked.data.nonce ? { nonce: mode.kind === 'wrong-nonce' ? new Uint8Array(randomBytes(16)) : checked.data.nonce } : {}),
      };
      // Answer in the Accept format (as a MASA may, digest §3.2).
      state.lastAccept = ctx.get('accept') || undefined;
      const answer = mode.kind === 'answer-as' ? mode.format : negotiateVoucherFormat(state.lastAccept, format);
      const nonceText = mode.kind !== 'wrong-nonce' && answer !== 'cose' ? checked.rvr.decoded.nonceText : undefined;
      const bytes = await signVoucherArtifact(answer, 'voucher', voucher, masaSigner,
        answer === 'cose' ? { unprotectedX5bag: [signerCert] } : nonceText ? { json: { nonceText } } : {});
      ctx.status = 200;
      ctx.type = VOUCHER_MEDIA_TYPE[answer];
      ctx.body = Buffer.from(bytes);
      return;
    }
    if (ctx.path === '/.well-known/brski/requestauditlog') {
      const { data } = await checkRvr(format, body);
      ctx.type = 'application/json';
      ctx.body = Buffer.from(encodeAuditLog({
        version: 1,
        events: [{ date: new Date().toISOString(), domainID: Buffer.from(domainIdOf(domainCa)).toString('base64'),
          nonce: data.nonce ? Buffer.from(data.nonce).toString('base64') : null, assertion: 'proximity' }, ...state.extraAuditEvents],
      }));
      return;
    }
    ctx.status = 404;
  });

  let server: https.Server | undefined;
  state.start = async () => {
    server = createTlsServer(app, {
      key: fx.pem('masa-tls.key'), cert: fx.pem('masa-tls.pem') + parseCertificatesPem(fx.pem('manufacturer-ca.pem')).map((c) => c.toString()).join(''),
      requestCert: true,
    });
    await listen(server, fx.masaPort, '127.0.0.1');
  };
  state.stop = async () => {
    for (const r of pending) r();
    pending.clear();
    if (server) await closeGracefully(server, 1000);
    server = undefined;
  };
  if (!opts.noStart) await state.start();
  return state;
}
