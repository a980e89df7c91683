/**
 * Hostile input: ≥ 10,000 malformed requests (BRSKI_FUZZ_COUNT) across every HTTP endpoint of
 * the registrar and the MASA, mutated from valid messages, plus slow clients. Every answer must
 * be a 4xx with a text body (never a 5xx, a crash or a hang); afterwards the services still
 * onboard pledges, log no internal error, and the stores hold exactly what they held before.
 */
import https from 'node:https';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { verifyEnvelope } from '@brski/shared/envelope/index';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseStatusTelemetry } from '@brski/shared/voucher/telemetry';
import { decodeBase64Body } from '@brski/shared/est/base64-body';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VOUCHER_FORMATS, VOUCHER_MEDIA_TYPE, bareMediaType, type VoucherFormat } from '@brski/shared/media';
import { Pledge } from '../../pledge-sim/src/pledge/pledge.ts';
import { manifestSource } from '../../pledge-sim/src/fleet/sources.ts';
import { agent, pledgeIdentity, pool, request, type RawRequest } from './helpers/client.ts';
import { failures, fleet } from './helpers/fleet.ts';
import { OVERSIZED, SHAPES, WRONG_TYPES, bitflip, ensureChanged, nonUtf8, prng, randomBytes, splice, truncate, type Rng } from './helpers/mutate.ts';
import { slowloris, type SlowResult } from './helpers/slowloris.ts';
import { FaultStack, MASA_PREFIX, REGISTRAR_PREFIX } from './helpers/stack.ts';
import { buildTargets, validRvr, type Agents, type Caller, type Origin, type Target } from './helpers/targets.ts';

const TOTAL = Number(process.env['BRSKI_FUZZ_COUNT'] ?? 12_000);
const SEED = Number(process.env['BRSKI_FUZZ_SEED'] ?? Date.now() % 2 ** 31);
const CONCURRENCY = 32;
const ACCEPTED_DIR = join(tmpdir(), 'brski-fuzz-accepted');
let stack: FaultStack;
let agents: Agents;

beforeAll(async () => {
  stack = await FaultStack.create({
    devices: 6,
    masa: (d) => { d['limits'] = { ...d['limits'], requestTimeoutMs: 10_000, headersTimeoutMs: 10_000 }; },
    registrar: (d) => { d['limits'] = { ...d['limits'], requestTimeoutMs: 10_000 }; },
  });
}, 120_000);
afterAll(async () => { for (const a of Object.values(agents ?? {})) a.destroy(); await stack?.stop(); });

interface Variant { family: string; req: RawRequest; getOk?: boolean; mayReset?: boolean; base?: Uint8Array }
const pick = <T>(rng: Rng, list: readonly T[]): T => list[Math.floor(rng() * list.length)]!;
const SHAPE_NAMES = Object.keys(SHAPES);

function variant(t: Target, rng: Rng, token: (o: Origin) => string): Variant {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(t.headers ?? {})) headers[k] = v === 'TOKEN' ? `Bearer ${token(t.origin)}` : v;
  const base = pick(rng, t.bases);
  const other = (type: string) => WRONG_TYPES.filter((w) => bareMediaType(w) !== bareMediaType(type));
  const post = (family: string, body: Uint8Array, type: string | undefined, extra: Partial<Variant> = {}): Variant => ({
    family, base: base.body, ...extra, req: { method: t.method, path: t.path, body, headers: { ...headers, ...(type === undefined ? {} : { 'content-type': type }) } },
  });
  if (t.get) {
    const r = rng();
    if (r < 0.6) {
      return { family: 'wrong-method', req: { method: pick(rng, ['POST', 'PUT', 'DELETE', 'PATCH']), path: t.path, body: randomBytes(rng, 512),
        headers: { ...headers, 'content-type': pick(rng, WRONG_TYPES) } } };
    }
    const junk = encodeURIComponent(Buffer.from(randomBytes(rng, 64)).toString('latin1'));
    return { family: 'junk-query', getOk: true, req: { method: 'GET', path: `${t.path}?${junk}=${junk}`, headers: { ...headers, accept: pick(rng, WRONG_TYPES) } } };
  }
  const families = t.structuralOnly
    ? ['truncate', 'garbage', 'wrong-type', 'missing-type', 'shape', 'non-utf8', 'oversized']
    : ['truncate', 'bitflip', 'bitflip', 'splice', 'garbage', 'wrong-type', 'missing-type', 'shape', 'non-utf8', 'oversized'];
  const family = pick(rng, families);
  switch (family) {
    case 'truncate': return post(family, truncate(rng, base.body), base.type);
    case 'bitflip': return post(family, ensureChanged(rng, base.body, bitflip(rng, base.body)), base.type);
    case 'splice': return post(family, ensureChanged(rng, base.body, splice(rng, base.body)), base.type);
    case 'garbage': return post(family, randomBytes(rng, 2048), base.type);
    case 'wrong-type': return post(family, base.body, pick(rng, other(base.type)));
    case 'missing-type': return post(family, base.body, undefined);
    case 'shape': return post(family, SHAPES[pick(rng, SHAPE_NAMES)]!, pick(rng, [base.type, 'application/json', 'application/cbor']));
    case 'non-utf8': return post(family, nonUtf8(rng, base.body), pick(rng, [base.type, 'application/json']));
    default: {
      const body = rng() < 0.9 ? OVERSIZED[0]! : OVERSIZED[1]!;
      return post(family, body, base.type, { mayReset: true });
    }
  }
}

describe('hostile input against every endpoint', () => {
  it(`${TOTAL} malformed requests: only 4xx with a text body; nothing stored; onboarding still works`, async () => {
    const m = stack.pki.manifest;
    // An LDevID for the re-enrollment target (before the snapshot: onboarding stores records).
    const src = manifestSource(m);
    const se = await src.secureElement(1);
    await new Pledge({ se, registrars: [stack.registrarUrl], format: 'jws', trust: src.trust, retry: { capSeconds: 1, maxTotalSeconds: 60 } }).onboard();
    const registrarId = { cert: readFileSync(m.registrar.cert, 'utf8') + readFileSync(m.domainCa.cert, 'utf8'), key: readFileSync(m.registrar.key, 'utf8') };
    agents = {
      pledge: agent(pledgeIdentity(stack.pki, 0), CONCURRENCY), registrar: agent(registrarId, CONCURRENCY),
      station: agent({ cert: readFileSync(m.station.cert, 'utf8'), key: readFileSync(m.station.key, 'utf8') }, CONCURRENCY),
      none: agent(undefined, CONCURRENCY),
      ldevid: new https.Agent({ keepAlive: true, maxSockets: CONCURRENCY, rejectUnauthorized: false, secureContext: se.tlsContext('ldevid') }),
    } satisfies Record<Caller, https.Agent>;
    // The RVR bases are valid: the MASA issues a voucher for each (before the snapshot).
    const rvrs = {} as Record<VoucherFormat, Uint8Array>;
    for (const f of VOUCHER_FORMATS) {
      rvrs[f] = await validRvr(stack.pki, f);
      const ok = await request(agents.registrar, stack.masaUrl, { path: '/.well-known/brski/requestvoucher', body: rvrs[f],
        headers: { 'content-type': VOUCHER_MEDIA_TYPE[f], accept: VOUCHER_MEDIA_TYPE[f] } });
      expect(ok.status, `valid ${f} RVR: ${ok.text}`).toBe(200);
    }
    const targets = await buildTargets(stack.pki, rvrs);
    const origins: Record<Origin, string> = { registrar: stack.registrarUrl, registrarAdmin: stack.registrarAdminUrl, masa: stack.masaUrl, masaAdmin: stack.masaAdminUrl };
    const token = (o: Origin) => (o === 'masaAdmin' ? stack.masaAdminToken : stack.registrarAdminToken);
    const before = { masa: await stack.countKeys(MASA_PREFIX), registrar: await stack.countKeys(REGISTRAR_PREFIX) };
    const keysBefore = new Set(await stack.keys('*'));

    const slow: Promise<SlowResult>[] = [stack.ports.registrar, stack.ports.masa].flatMap((p) => [slowloris(p, 'headers'), slowloris(p, 'body')]);
    const rng = prng(SEED);
    const work = Array.from({ length: TOTAL }, (_, i) => { const t = targets[i % targets.length]!; return { t, v: variant(t, rng, token) }; });
    // Headers over the 16 KiB limit, and paths that go nowhere.
    for (const o of ['registrar', 'masa'] as const) {
      const t = targets.find((x) => x.origin === o)!;
      work.push({ t, v: { family: 'huge-header', mayReset: true, req: { method: 'POST', path: t.path, headers: { 'x-junk': 'a'.repeat(20_000) }, body: new Uint8Array(1) } } });
      for (const path of ['/.well-known/brski/../../admin', '/%00%ff', `/${'a'.repeat(8_000)}`, '/.well-known/brski/requestvoucher/x'])
        work.push({ t, v: { family: 'bad-path', req: { method: 'POST', path, body: new Uint8Array(1), headers: { 'content-type': 'text/plain' } } } });
    }

    const byStatus: Record<string, number> = {};
    const benign: string[] = [];
    const idevidAnchors = [new X509Certificate(readFileSync(m.idevidCa.cert))];
    const pledgeLeaf = new X509Certificate(readFileSync(m.pledges[0]!.cert));
    const registrarAnchors = [new X509Certificate(readFileSync(m.domainCa.cert))];
    const registrarLeaf = new X509Certificate(readFileSync(m.registrar.cert));
    const sameSignedContent = async (t: Target, base: Uint8Array, mutant: Uint8Array): Promise<boolean> => {
      const format = t.bases.find((b) => b.body === base)?.type;
      const f = VOUCHER_FORMATS.find((x) => VOUCHER_MEDIA_TYPE[x] === format);
      if (!f) return false;
      const opts = t.caller === 'registrar' ? { anchors: registrarAnchors, signerCertificate: registrarLeaf } : { anchors: idevidAnchors, signerCertificate: pledgeLeaf };
      try {
        const [a, b] = [await verifyEnvelope(f, base, opts), await verifyEnvelope(f, mutant, opts)];
        return Buffer.from(a.payload).equals(Buffer.from(b.payload)) && a.signer.fingerprint256 === b.signer.fingerprint256;
      } catch { return false; }
    };
    const isValidTelemetry = (body: Uint8Array, contentType: string): boolean => {
      const bare = contentType.split(';')[0]!.trim().toLowerCase();
      if (bare !== 'application/json' && bare !== 'application/cbor') return false;
      try { parseStatusTelemetry(body, bare === 'application/cbor' ? 'cbor' : 'json'); return true; } catch { return false; }
    };
    // EST bodies tolerate missing padding and whitespace (RFC 8951 §3.4): a truncation that only
    // drops the trailing '=' still carries the very same CSR, so its 200 is correct, not a leak.
    const sameCsr = (base: Uint8Array, mutant: Uint8Array): boolean => {
      try { return Buffer.from(decodeBase64Body(base)).equals(Buffer.from(decodeBase64Body(mutant))); } catch { return false; }
    };
    let benignEnrolls = 0;
    const violations: string[] = [];
    let slowest = 0;
    const started = performance.now();
    await pool(work, CONCURRENCY, async ({ t, v }) => {
      let r = await request(agents[t.caller], origins[t.origin], { ...v.req, timeoutMs: 15_000 });
      // Keep-alive race: the server closed an idle pooled socket just as the agent reused it. Send once
      // more on a fresh socket; a server that really resets requests fails the second time too.
      if (r.status === -1 && /socket hang up/.test(r.text) && !v.mayReset) r = await request(agents[t.caller], origins[t.origin], { ...v.req, timeoutMs: 15_000 });
      byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
      slowest = Math.max(slowest, r.ms);
      const type = String(r.headers['content-type'] ?? '');
      const okStatus = v.getOk ? r.status >= 200 && r.status < 500 : r.status >= 400 && r.status < 500;
      const clear = r.status < 400 || (r.text.trim().length > 0 && type.startsWith('text/plain'));
      const reset = v.mayReset && r.status === -1 && /ECONNRESET|EPIPE/.test(r.text);
      if (r.status === 200 && v.base && (await sameSignedContent(t, v.base, v.req.body as Uint8Array))) {
        // The mutation hit bytes no signature covers and no check uses (e.g. the embedded copy
        // of a CA certificate that is a configured anchor anyway): a valid message, not a malformed one.
        benign.push(`${t.name} [${v.family}]`);
        return;
      }
      if (r.status === 200 && v.base && /simple(re)?enroll$/.test(v.req.path) && sameCsr(v.base, v.req.body as Uint8Array)) {
        benign.push(`${t.name} [${v.family}]`);
        benignEnrolls++;
        return;
      }
      if (r.status === 200 && /voucher_status|enrollstatus/.test(v.req.path) && v.req.body && isValidTelemetry(typeof v.req.body === "string" ? new TextEncoder().encode(v.req.body) : v.req.body, String(v.req.headers?.['content-type'] ?? ''))) {
        // A mutant that is still a well-formed status report (e.g. a flipped letter in `reason`, or
        // extra members, which the registrar must log and otherwise ignore: digest §7.1) is valid input.
        benign.push(`${t.name} [${v.family}]`);
        return;
      }
      if (!reset && (!okStatus || !clear)) {
        violations.push(`${t.name} [${v.family}] → ${r.status} ${type} ${JSON.stringify(r.text.slice(0, 120))}`);
        if (r.status >= 200 && r.status < 300 && v.req.body) {
          // Keep accepted mutants for analysis (which bytes changed, and where).
          mkdirSync(ACCEPTED_DIR, { recursive: true });
          const name = join(ACCEPTED_DIR, `${t.name.replace(/\W+/g, '_')}-${v.family}-${violations.length}`);
          writeFileSync(`${name}.bin`, v.req.body);
          if (v.base) writeFileSync(`${name}.base`, v.base);
        }
      }
    });
    const seconds = (performance.now() - started) / 1000;
    const slowResults = await Promise.all(slow);
    const after = { masa: await stack.countKeys(MASA_PREFIX), registrar: await stack.countKeys(REGISTRAR_PREFIX) };
    // Factory rate-limit windows count every attempt, refused ones included (that is what a
    // throttle is for); they expire by themselves and are not records.
    // Records for pledge 0 / its exchanges may only appear when a benign (validly signed) mutant got through.
    const serial0 = m.pledges[0]!.serial;
    const newKeysAll = (await stack.keys('*')).filter((k) => !keysBefore.has(k));
    const newKeys = newKeysAll.filter((k) => !keysBefore.has(k) && !/:station:\{[^}]*\}:rate:\d+$/.test(k)
      && !(benign.length > 0 && (k.includes(serial0) || /\}:job:[0-9a-f]{64}$/.test(k)))
      && !(benignEnrolls > 0 && /\}:cert:[0-9A-Fa-f]+$/.test(k)));
    // At most one certificate record per benign enroll mutant that got through.
    const newCerts = newKeysAll.filter((k) => /\}:cert:[0-9A-Fa-f]+$/.test(k));
    expect(newCerts.length).toBeLessThanOrEqual(benignEnrolls);
    const internal = [...stack.masa.logs(), ...stack.registrar.logs()].filter((l) => Number(l['level']) >= 50 || /internal|unhandled/.test(String(l['msg'])));
    console.log(`[faults] hostile ${JSON.stringify({ seed: SEED, requests: work.length, targets: targets.length, seconds: Math.round(seconds * 10) / 10,
      perSecond: Math.round(work.length / seconds), slowestMs: Math.round(slowest), byStatus, violations: violations.length, benignAccepted: benign, keysBefore: before, keysAfter: after,
      errorLogLines: internal.length, slowClients: slowResults })}`);
    const grouped: Record<string, number> = {};
    for (const v of violations) { const k = v.slice(0, v.indexOf('→') + 6); grouped[k] = (grouped[k] ?? 0) + 1; }
    if (violations.length) console.log(`[faults] hostile violations by kind ${JSON.stringify(grouped, null, 1)}\nexamples:\n${[...new Map(violations.map((v) => [v.slice(0, v.indexOf('→') + 6), v])).values()].join('\n')}`);
    if (newKeys.length) console.log(`[faults] hostile new keys: ${newKeys.slice(0, 30).join(' ')}`);

    // Afterwards: both services are the same processes and still onboard pledges.
    const report = await fleet(stack, { offset: 3, count: 3, concurrency: 3, format: 'mixed' });
    expect(stack.masa.running && stack.registrar.running).toBe(true);
    expect([stack.masa.starts, stack.registrar.starts]).toEqual([1, 1]);
    expect(report.failed, failures(report)).toBe(0);
    expect(work.length).toBeGreaterThanOrEqual(10_000);
    expect(violations, violations.slice(0, 10).join('\n')).toEqual([]);
    expect(newKeys).toEqual([]);
    if (benign.length === 0) expect(after.registrar).toEqual(before.registrar);
    expect(internal.map((l) => JSON.stringify(l).slice(0, 300))).toEqual([]);
    for (const s of slowResults) expect(s.closedAfterMs, `slow ${s.mode} client never cut off`).not.toBeNull();
    for (const s of slowResults) expect(s.closedAfterMs!).toBeLessThan(45_000);
  }, 115_000);
});
