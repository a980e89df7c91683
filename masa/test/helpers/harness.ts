/** Starts a real MASA (HTTPS, client certificates) on a free port over a given store, with captured logs. */
import { Writable } from 'node:stream';
import { createLogger } from '@brski/shared/observability/logger';
import { createMetrics } from '@brski/shared/observability/metrics';
import { makeTempDir } from '../../../test/helpers/tmp.ts';
import { buildMasaConfig } from '../../src/config.ts';
import { createMasa, type Masa } from '../../src/server.ts';
import type { MasaStore } from '../../src/store/types.ts';
import { TlsClient } from './client.ts';
import { writeMasaFiles, type Party, type TestPki } from './pki.ts';

export interface Harness {
  masa: Masa; store: MasaStore; logs: Array<Record<string, unknown>>; adminToken: string;
  client(party?: Party): TlsClient;
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; json: any; text: string }>;
  stop(): Promise<void>;
}

export async function startMasa(pki: TestPki, store: MasaStore, patch: (raw: Record<string, any>) => void = () => {}): Promise<Harness> {
  const dir = makeTempDir('masa-test-');
  const raw = writeMasaFiles(pki, dir.path) as Record<string, any>;
  patch(raw);
  const config = buildMasaConfig(raw, dir.path);
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({ write(chunk, _enc, cb) { for (const l of String(chunk).split('\n')) if (l) logs.push(JSON.parse(l)); cb(); } });
  const logger = createLogger({ name: 'masa', level: 'info', destination: sink });
  const masa = createMasa(config, { store, logger, metrics: createMetrics('masa', { processMetrics: false }) });
  await masa.start();
  const clients: TlsClient[] = [];
  const adminClient = new TlsClient(masa.adminUrl!, pki.vendor.cert);
  const token = String(raw['admin'].token);
  return {
    masa, store, logs, adminToken: token,
    client(party?: Party) { const c = new TlsClient(masa.url, pki.vendor.cert, party); clients.push(c); return c; },
    async admin(method, path, body) {
      const r = await adminClient.request(method, path, body === undefined ? undefined : JSON.stringify(body),
        { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) });
      let json: unknown;
      try { json = JSON.parse(r.text); } catch { json = undefined; }
      return { status: r.status, json, text: r.text };
    },
    async stop() { for (const c of clients) c.close(); adminClient.close(); await masa.stop(); dir.cleanup(); },
  };
}
