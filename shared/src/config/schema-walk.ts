/**
 * Just enough zod 4 introspection for the config loader: find the real (camelCase) key an
 * upper-case env segment means, and whether a leaf wants a string (so "0123" stays a string).
 * Uses the documented `_zod.def` internals; unknown kinds degrade to "no schema information".
 */
import type { z } from 'zod';

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  element?: z.ZodType;
  valueType?: z.ZodType;
  options?: z.ZodType[];
  values?: unknown[];
  entries?: Record<string, unknown>;
  getter?: () => z.ZodType;
}

function defOf(s: z.ZodType | undefined): Def | undefined {
  return (s as unknown as { _zod?: { def?: Def } } | undefined)?._zod?.def;
}

/** Strips optional/default/nullable/pipe/… wrappers. */
export function unwrap(s: z.ZodType | undefined): z.ZodType | undefined {
  for (let i = 0; i < 20 && s; i++) {
    const d = defOf(s);
    if (!d) return s;
    switch (d.type) {
      case 'optional': case 'nullable': case 'default': case 'prefault': case 'catch': case 'readonly': case 'nonoptional':
        s = d.innerType; break;
      case 'pipe':
        s = defOf(d.in)?.type === 'transform' ? d.out : d.in; break;
      case 'lazy':
        s = d.getter?.(); break;
      default:
        return s;
    }
  }
  return s;
}

export const normalizeKey = (k: string): string => k.toLowerCase().replace(/[_-]/g, '');

/** Object shapes reachable at this schema node (several for unions). */
function shapes(s: z.ZodType | undefined): Array<Record<string, z.ZodType>> {
  const u = unwrap(s);
  const d = defOf(u);
  if (!d) return [];
  if (d.type === 'object' && d.shape) return [d.shape];
  if (d.type === 'union' && d.options) return d.options.flatMap(shapes);
  return [];
}

export interface ChildLookup {
  /** The key to use in the config object. */
  key: string;
  schema: z.ZodType | undefined;
  /** False when the schema has a closed set of keys and none matches. */
  known: boolean;
}

/** Maps an env segment (e.g. KEEP_ALIVE_MS) to a child key (keepAliveMs) of `s`. */
export function childOf(s: z.ZodType | undefined, segment: string, existing: unknown): ChildLookup {
  const want = normalizeKey(segment);
  for (const shape of shapes(s)) {
    for (const [k, child] of Object.entries(shape)) if (normalizeKey(k) === want) return { key: k, schema: child, known: true };
  }
  if (existing && typeof existing === 'object' && !Array.isArray(existing)) {
    for (const k of Object.keys(existing)) if (normalizeKey(k) === want) return { key: k, schema: undefined, known: true };
  }
  const u = unwrap(s);
  const d = defOf(u);
  if (d?.type === 'record') return { key: segment.toLowerCase(), schema: d.valueType, known: true };
  if (d?.type === 'array' && /^\d+$/.test(segment)) return { key: segment, schema: d.element, known: true };
  // No schema information (z.any(), z.unknown(), custom): allow, lower-cased.
  const open = d === undefined || d.type === 'any' || d.type === 'unknown';
  return { key: segment.toLowerCase(), schema: undefined, known: open };
}

/** True when the schema accepts only strings at this node (string, string enum/literal, union thereof). */
export function wantsString(s: z.ZodType | undefined): boolean {
  const u = unwrap(s);
  const d = defOf(u);
  if (!d) return false;
  switch (d.type) {
    case 'string': case 'template_literal': return true;
    case 'enum': return Object.values(d.entries ?? {}).every((v) => typeof v === 'string');
    case 'literal': return (d.values ?? []).every((v) => typeof v === 'string');
    case 'union': return (d.options ?? []).length > 0 && (d.options ?? []).every(wantsString);
    default: return false;
  }
}
