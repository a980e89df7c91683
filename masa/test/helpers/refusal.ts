/** Shared assertions: a refusal (status, text/plain reason, `refused` log line with the code, nothing stored). */
import { expect } from 'vitest';
import type { Reply } from './client.ts';
import type { Harness } from './harness.ts';

export async function expectRefused(h: Harness, reply: Reply, status: number, code: string, serial?: string): Promise<void> {
  expect(reply.status, reply.text).toBe(status);
  expect(reply.headers['content-type']).toMatch(/^text\/plain/);
  expect(reply.text.startsWith(`${code}: `), reply.text).toBe(true);
  expect(h.logs.some((l) => l['code'] === code && l['msg'] === 'refused')).toBe(true);
  if (serial !== undefined) {
    expect(await h.store.readAudit(serial)).toEqual([]);
    expect((await h.store.getOwnership(serial)).firstUse).toBeUndefined();
  }
}

/** Log lines with this message since `from` (index into h.logs). */
export function logsSince(h: Harness, from: number, msg: string): Array<Record<string, unknown>> {
  return h.logs.slice(from).filter((l) => l['msg'] === msg);
}
