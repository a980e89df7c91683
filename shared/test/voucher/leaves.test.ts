import { describe, expect, it } from 'vitest';
import { readVectorText } from '../helpers/vectors.ts';
import { LEAVES, SID, TOP_MEMBER, TOP_SID, deltaOf, leafByDelta, leafBySid, leafByYang, leavesFor, sidOf,
  isHistoricalSid } from '../../src/voucher/leaves.ts';
import type { VoucherKind } from '../../src/voucher/model.ts';

interface SidItem { namespace: string; identifier: string; sid: string }
function sidFile(name: string): SidItem[] {
  return (JSON.parse(readVectorText(`sid/${name}`)) as { 'ietf-sid-file:sid-file': { item: SidItem[] } })['ietf-sid-file:sid-file'].item;
}

const FILES: Record<VoucherKind, string> = {
  'voucher': 'ietf-voucher@2025-12-18.sid',
  'voucher-request': 'ietf-voucher-request@2025-12-18.sid',
};

describe('leaf table vs the 2025-12-18 SID files', () => {
  for (const kind of ['voucher', 'voucher-request'] as const) {
    it(`${kind}: every data SID of the file is in the table with the same SID, and nothing else`, () => {
      const items = sidFile(FILES[kind]);
      const mod = TOP_MEMBER[kind].split(':')[0]!;
      expect(items.find((i) => i.namespace === 'module')).toEqual({ namespace: 'module', identifier: mod, sid: String(TOP_SID[kind] - 1) });
      expect(items.find((i) => i.identifier === `/${TOP_MEMBER[kind]}`)?.sid).toBe(String(TOP_SID[kind]));
      const leafItems = items.filter((i) => i.identifier.startsWith(`/${TOP_MEMBER[kind]}/`));
      expect(leafItems.length).toBe(leavesFor(kind).length);
      for (const item of leafItems) {
        const yang = item.identifier.split('/').pop()!;
        const leaf = leafByYang(kind, yang);
        expect(leaf, yang).toBeDefined();
        expect(sidOf(kind, leaf!), yang).toBe(Number(item.sid));
        expect(leafBySid(kind, Number(item.sid))).toBe(leaf);
      }
    });

    it(`${kind}: agrees with the printed (normative) table`, () => {
      const txt = readVectorText(`sid/${kind === 'voucher' ? 'ietf-voucher' : 'ietf-voucher-request'}-sid.txt`);
      const rows = [...txt.matchAll(/^(\d{4}) data\s+\/[\w-]+:voucher\/([\w-]+)$/gm)];
      expect(rows.length).toBe(leavesFor(kind).length);
      for (const [, sid, yang] of rows) expect(sidOf(kind, leafByYang(kind, yang!)!)).toBe(Number(sid));
    });
  }

  it('has the digest §5.4 traps right', () => {
    const serial = leafByYang('voucher', 'serial-number')!;
    expect(deltaOf('voucher', serial)).toBe(11);
    expect(deltaOf('voucher-request', serial)).toBe(13);
    expect(leafByDelta('voucher', 7)!.yang).toBe('nonce');
    expect(leafByDelta('voucher-request', 7)!.yang).toBe('nonce');
    expect(leafByDelta('voucher-request', 11)!.yang).toBe('proximity-registrar-pubk-sha256');
    expect(leafByDelta('voucher-request', 12)!.yang).toBe('proximity-registrar-pubk');
    expect(leafByDelta('voucher-request', 17)!.yang).toBe('pinned-domain-pubk');
    expect(leafByDelta('voucher-request', 18)!.yang).toBe('pinned-domain-pubk-sha256');
    expect(leafByDelta('voucher', 14)!.yang).toBe('manufacturer-proprietary');
    expect(leafByDelta('voucher', 15)!.yang).toBe('extensions');
    expect(leafByDelta('voucher-request', 21)!.yang).toBe('extensions');
    expect(leafByDelta('voucher-request', 22)!.yang).toBe('manufacturer-proprietary');
    expect(leafByDelta('voucher', 17)).toBeUndefined();
    expect(leafByYang('voucher', 'proximity-registrar-cert')).toBeUndefined();
    expect(SID).toEqual({ voucherModule: 2450, voucher: 2451, voucherRequestModule: 2500, voucherRequest: 2501 });
  });

  it('derives every property name as the camelCase of the YANG name', () => {
    for (const l of LEAVES) expect(l.prop).toBe(l.yang.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase()));
  });

  it('flags the pre-2019 experimental range only', () => {
    expect(isHistoricalSid(1001154)).toBe(true);
    expect(isHistoricalSid(1001100)).toBe(true);
    expect(isHistoricalSid(2501)).toBe(false);
  });
});
