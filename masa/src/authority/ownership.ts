/**
 * Ownership policy (issue #3 item 3): who may receive a voucher for a device, and which assertion
 * the voucher carries.
 * - claimed:   only a domain named by a sales record (admin claim) → assertion 'verified';
 * - first-use: the first domain to obtain a voucher owns the device (recorded atomically at
 *              commit) → 'logged'; sales-record claims, if any, still take precedence;
 * - open:      any domain (labs) → 'logged'.
 * Pure functions; the store provides the inputs and enforces the same rule again at commit time.
 */
import { BrskiError } from '@brski/shared/errors';
import type { Assertion } from '@brski/shared/voucher/model';
import type { DeviceRecord, Ownership, OwnershipPolicy } from '../store/types.ts';

export interface PolicySources {
  defaultPolicy: OwnershipPolicy;
  /** Product line policies from the configuration. */
  configLines: Readonly<Record<string, OwnershipPolicy>>;
  /** Product line policy set through the admin API (wins over the configuration). */
  storedLine: OwnershipPolicy | undefined;
}

/** Device override → admin-set product line policy → configured product line policy → default. */
export function effectivePolicy(device: Pick<DeviceRecord, 'policy' | 'productLine'>, src: PolicySources): OwnershipPolicy {
  return device.policy ?? src.storedLine ?? src.configLines[device.productLine] ?? src.defaultPolicy;
}

export interface OwnershipDecision {
  policy: OwnershipPolicy;
  assertion: Assertion;
  /** Commit-time guards for the store (see VoucherCommit). */
  firstUseDomainId?: string;
  requireClaimedDomainId?: string;
  /** The requester's domainID that matched a claim, if any. */
  matchedClaim?: string;
}

/**
 * Decides whether the domain identified by `domainIds` (the domainIDs of every certificate in the
 * verified RVR chain, pinned one first) may have a voucher. Throws BrskiError on refusal.
 */
export function decideOwnership(policy: OwnershipPolicy, ownership: Ownership, domainIds: readonly string[],
  serial: string): OwnershipDecision {
  const pinnedId = domainIds[0]!;
  const matchedClaim = domainIds.find((id) => ownership.claimed.includes(id));
  switch (policy) {
    case 'claimed': {
      if (matchedClaim !== undefined) return { policy, assertion: 'verified', requireClaimedDomainId: matchedClaim, matchedClaim };
      if (ownership.claimed.length === 0) {
        // 403: an administrator can fix this by recording the sale.
        throw new BrskiError('forbidden', `device ${serial} has no owner of record (policy "claimed")`,
          { detail: { serial, policy, domainId: pinnedId } });
      }
      throw new BrskiError('claimed-by-other-domain', `device ${serial} is claimed by another domain`,
        { detail: { serial, policy, domainId: pinnedId } });
    }
    case 'first-use': {
      if (ownership.claimed.length > 0 && matchedClaim === undefined) {
        throw new BrskiError('claimed-by-other-domain', `device ${serial} is claimed by another domain`,
          { detail: { serial, policy, domainId: pinnedId } });
      }
      if (ownership.firstUse !== undefined && !domainIds.includes(ownership.firstUse) && matchedClaim === undefined) {
        throw new BrskiError('claimed-by-other-domain', `device ${serial} already belongs to another domain (first use)`,
          { detail: { serial, policy, domainId: pinnedId } });
      }
      // Record the domain that first used it; a domain matched through a claim is recorded by its claim.
      const owner = matchedClaim ?? (ownership.firstUse !== undefined && domainIds.includes(ownership.firstUse)
        ? ownership.firstUse : pinnedId);
      return matchedClaim === undefined
        ? { policy, assertion: 'logged', firstUseDomainId: owner }
        : { policy, assertion: 'logged', firstUseDomainId: owner, matchedClaim };
    }
    case 'open':
      return matchedClaim === undefined ? { policy, assertion: 'logged' } : { policy, assertion: 'logged', matchedClaim };
  }
}
