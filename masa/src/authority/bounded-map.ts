/** Insert or refresh `k` in an insertion-ordered Map used as an LRU, dropping the oldest beyond `max`. */
export function remember<V>(m: Map<string, V>, k: string, v: V, max = 512): void {
  m.delete(k);
  m.set(k, v);
  if (m.size > max) m.delete(m.keys().next().value!);
}
