/**
 * Turns the registrar's CSR attributes (RFC 7030 §4.5.2 / RFC 9908) into what the pledge puts
 * in its CSR: requested extension values are copied, the requested EC curve picks the SE key.
 * Unrecognised items are ignored, as clients MUST; a key the SE cannot make is a named failure.
 */
import type { CsrOptions } from '@brski/shared/pki/csr';
import { csrAttrsRequirements, type CsrAttrItem } from '@brski/shared/est/csrattrs';
import { OID } from '@brski/shared/pki/oids';
import type { EcCurve } from '../se/types.ts';
import { PledgeFailure } from './errors.ts';

export interface CsrPlan { curve?: EcCurve; csr: CsrOptions; summary: string }

const CURVES: Record<string, EcCurve> = { [OID.secp256r1]: 'P-256', [OID.secp384r1]: 'P-384' };

export function csrOptionsFromAttrs(items: readonly CsrAttrItem[] | undefined): CsrPlan {
  if (!items || items.length === 0) return { csr: {}, summary: 'no requirements' };
  let req;
  try {
    req = csrAttrsRequirements(items);
  } catch (e) {
    throw new PledgeFailure('est-csrattrs-failed', (e as Error).message, { cause: e });
  }
  if (req.rsaBits !== undefined) throw new PledgeFailure('est-csrattrs-failed', `registrar asks for an RSA-${req.rsaBits} key; the secure element makes EC keys only`);
  let curve: EcCurve | undefined;
  if (req.ecCurveOid !== undefined) {
    curve = CURVES[req.ecCurveOid];
    if (!curve) throw new PledgeFailure('est-csrattrs-failed', `registrar asks for curve ${req.ecCurveOid}, which the secure element does not support`);
  }
  const csr: CsrOptions = req.extensions.length > 0 ? { extensions: req.extensions } : {};
  const parts = [
    ...(curve ? [`key ${curve}`] : []),
    ...(req.extensions.length ? [`extensions ${req.extensions.map((e) => e.oid).join(', ')}`] : []),
    ...(req.oids.length ? [`ignored OIDs ${req.oids.join(', ')}`] : []),
  ];
  return { ...(curve ? { curve } : {}), csr, summary: parts.join('; ') || 'no requirements' };
}
