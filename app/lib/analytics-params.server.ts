/**
 * URL parameters shared by the usage analytics pages: the date range (from/to/tz) and a
 * table's sort/dir/page. Bad values answer 400 naming the parameter; nothing is guessed.
 */
import { data } from "@remix-run/node";
import { z } from "zod";
import { parseRangeParams, type DateRange } from "~/domain/period";
import type { Permission } from "~/domain/permissions";
import { requireStaff, type Staff } from "~/lib/auth.server";

export function badRequest(errors: Record<string, string>): never {
  throw data({ message: `Invalid parameters: ${Object.entries(errors).map(([k, m]) => `${k} ${m}`).join("; ")}` }, { status: 400 });
}

export async function analyticsRequest(request: Request, permission: Permission = "dashboard:read"): Promise<{ staff: Staff; params: URLSearchParams; range: DateRange }> {
  const staff = await requireStaff(request, permission);
  const params = new URL(request.url).searchParams;
  const parsed = parseRangeParams(params, staff.timezone);
  if (!parsed.ok) badRequest(parsed.errors);
  return { staff, params, range: parsed.range };
}

export interface TableState<K extends string> {
  sort: K;
  desc: boolean;
  page: number;
  pageSize: number;
}

/** sort/dir/page (names can be prefixed when two tables share a page). */
export function tableParams<K extends string>(params: URLSearchParams, keys: readonly [K, ...K[]], defaultSort: K, options: { prefix?: string; pageSize?: number; defaultDesc?: boolean } = {}): TableState<K> {
  const p = options.prefix ?? "";
  const schema = z.object({
    [`${p}sort`]: z.enum(keys, { errorMap: () => ({ message: `must be one of ${keys.join(", ")}` }) }).default(defaultSort),
    [`${p}dir`]: z.enum(["asc", "desc"], { errorMap: () => ({ message: "must be asc or desc" }) }).optional(),
    [`${p}page`]: z.coerce.number({ invalid_type_error: "must be a page number" }).int("must be a whole page number").min(1, "must be 1 or more").max(100_000).default(1),
  });
  const parsed = schema.safeParse({
    [`${p}sort`]: params.get(`${p}sort`) || undefined,
    [`${p}dir`]: params.get(`${p}dir`) || undefined,
    [`${p}page`]: params.get(`${p}page`) || undefined,
  });
  if (!parsed.success) badRequest(Object.fromEntries(parsed.error.issues.map((i) => [String(i.path[0]), i.message])));
  const values = parsed.data as Record<string, unknown>;
  const dir = values[`${p}dir`] as "asc" | "desc" | undefined;
  return {
    sort: values[`${p}sort`] as K,
    desc: dir ? dir === "desc" : (options.defaultDesc ?? true),
    page: values[`${p}page`] as number,
    pageSize: options.pageSize ?? 25,
  };
}

/** Sorts aggregated rows (a few dozen, already summed in SQL) by a column and returns one page. */
export function sortAndPage<Row, K extends string>(rows: Row[], state: TableState<K>, value: (row: Row, key: K) => number | string | null): { rows: Row[]; total: number } {
  const sorted = [...rows].sort((a, b) => {
    const x = value(a, state.sort);
    const y = value(b, state.sort);
    const order = x === y ? 0 : x === null ? 1 : y === null ? -1 : x < y ? -1 : 1;
    return state.desc ? -order : order;
  });
  const start = (state.page - 1) * state.pageSize;
  return { rows: sorted.slice(start, start + state.pageSize), total: rows.length };
}
