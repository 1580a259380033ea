/** Stable colours per series name, so a type has the same colour on every chart. */
const COLORS = [
  "#4f46e5", "#0891b2", "#16a34a", "#ca8a04", "#dc2626", "#9333ea", "#db2777",
  "#0d9488", "#ea580c", "#2563eb", "#65a30d", "#7c3aed", "#e11d48", "#475569",
];

export function colorFor(name: string): string {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return COLORS[hash % COLORS.length] as string;
}
