/** A link's query string: the page's range (from/to/tz) plus filters; empty filters are left out. */
export function rangeQuery(range: { from: string; to: string; tz: string }, extra: Record<string, string | null | undefined> = {}): string {
  const params = new URLSearchParams({ from: range.from, to: range.to, tz: range.tz });
  for (const [k, v] of Object.entries(extra)) if (v !== null && v !== undefined && v !== "") params.set(k, v);
  return params.toString();
}
