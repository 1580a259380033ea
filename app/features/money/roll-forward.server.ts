/**
 * The monthly balance roll-forward per balance owner (the ledger's user_id: a shared pool's
 * owner pays its members' charges), for the Reports page, its download and
 * `cli export-balances`. Sums come from the ledger's month totals (migration 0028) and the
 * entries of at most 14 hours at each end, never from every entry before the month; the TOTAL
 * row is the empty grouping set of the same statement, so it is the sum of the printed rows.
 *
 * Every figure is a sum of ledger amounts between two instants (the month's local midnights,
 * from luxon, app/domain/period.ts), so closing = Σ amounts before the end = the next month's
 * opening exactly, and the identity holds by construction on every row:
 *   charged = −(Σ usage + Σ correction) when that is ≥ 0;
 *   a month whose corrections refund more than it charged (usage charged earlier, corrected
 *   now) has charged 0 and the net refund counted in `granted`: tokens given back are an
 *   inflow, and the four flows stay non-negative as the Contract requires. `corrections`
 *   shows the corrections' signed sum on its own.
 */
import { sql, type Kysely, type RawBuilder } from "kysely";
import type { Database } from "../../../db/types";
import { stringifyCsv, type CsvCell, type CsvColumnKind } from "~/domain/csv";
import type { MonthPeriod } from "~/domain/period";
import { nearestUtcMonth, type RollForwardFigures } from "./rules";

export interface RollForwardRow extends RollForwardFigures {
  /** null on the TOTAL row. */
  user_id: string | null;
  email: string | null;
  corrections: number;
  entries: number;
}

export interface RollForward {
  period: MonthPeriod;
  /** Owners in user id order (or the largest charges first, `limit` of them, for the page). */
  rows: RollForwardRow[];
  total: RollForwardRow;
  /** Owners in the month: a non-zero opening or any entry in it. */
  owners: number;
}

/** Columns of the CSV, in order; documented in the README. */
export const ROLL_FORWARD_COLUMNS: { name: keyof RollForwardRow; kind: CsvColumnKind; description: string }[] = [
  { name: "user_id", kind: "text", description: "the balance owner's UUID (a shared pool's owner); TOTAL on the last row" },
  { name: "opening_balance", kind: "number", description: "Σ of the owner's ledger amounts before the month's first local midnight" },
  { name: "purchased", kind: "number", description: "tokens purchased in the month" },
  { name: "granted", kind: "number", description: "tokens granted in the month (plus a net refund by corrections, see charged)" },
  { name: "charged", kind: "number", description: "usage charges less corrections in the month, never negative" },
  { name: "deducted", kind: "number", description: "tokens deducted by staff in the month" },
  { name: "expired", kind: "number", description: "tokens of grants that expired in the month" },
  { name: "closing_balance", kind: "number", description: "opening + purchased + granted − charged − deducted − expired" },
  { name: "corrections", kind: "number", description: "signed sum of correction entries in the month (already inside charged, or granted when a refund)" },
  { name: "entries", kind: "number", description: "ledger entries of the owner in the month" },
  { name: "email", kind: "text", description: "the owner's email when known" },
];

/**
 * The roll-forward of `period`. `limit` keeps the owners with the largest charges (the page);
 * without it every owner is returned in user id order (the CSV).
 */
export async function rollForward(db: Kysely<Database>, period: MonthPeriod, options: { limit?: number } = {}): Promise<RollForward> {
  const result = await sql<RollForwardRow & { is_total: boolean; owners: number }>`
    WITH cumulative AS (${ledgerCumulativeSql(period.start, period.end)}),
    per_owner AS (
      SELECT user_id,
             sum(at_start) AS opening,
             COALESCE(sum(at_end - at_start) FILTER (WHERE kind = 'purchase'), 0) AS purchase,
             COALESCE(sum(at_end - at_start) FILTER (WHERE kind = 'grant'), 0) AS grant_sum,
             COALESCE(sum(at_end - at_start) FILTER (WHERE kind IN ('usage', 'correction')), 0) AS charge_net,
             COALESCE(sum(at_end - at_start) FILTER (WHERE kind = 'correction'), 0) AS corrections,
             COALESCE(sum(at_end - at_start) FILTER (WHERE kind = 'deduct'), 0) AS deduct,
             COALESCE(sum(at_end - at_start) FILTER (WHERE kind = 'expiry'), 0) AS expiry,
             sum(n_end - n_start) AS entries
      FROM cumulative
      GROUP BY user_id
    ), owner_rows AS (
      SELECT user_id, opening, purchase,
             grant_sum + GREATEST(charge_net, 0) AS granted,
             GREATEST(-charge_net, 0) AS charged,
             -deduct AS deducted, -expiry AS expired,
             opening + purchase + grant_sum + charge_net + deduct + expiry AS closing,
             corrections, entries
      FROM per_owner
      WHERE opening <> 0 OR entries > 0
    )
    SELECT (GROUPING(o.user_id) = 1) AS is_total, o.user_id,
           COALESCE(sum(o.opening), 0)::bigint AS opening_balance, COALESCE(sum(o.purchase), 0)::bigint AS purchased,
           COALESCE(sum(o.granted), 0)::bigint AS granted, COALESCE(sum(o.charged), 0)::bigint AS charged,
           COALESCE(sum(o.deducted), 0)::bigint AS deducted, COALESCE(sum(o.expired), 0)::bigint AS expired,
           COALESCE(sum(o.closing), 0)::bigint AS closing_balance, COALESCE(sum(o.corrections), 0)::bigint AS corrections,
           COALESCE(sum(o.entries), 0)::bigint AS entries, count(*)::bigint AS owners, max(e.email) AS email
    FROM owner_rows o
    LEFT JOIN app_users e ON e.user_id = o.user_id
    GROUP BY GROUPING SETS ((o.user_id), ())`.execute(db);
  const totalRow = result.rows.find((r) => r.is_total);
  const ownerRows = result.rows.filter((r) => !r.is_total);
  const owners = ownerRows.length;
  const sorted = options.limit !== undefined
    ? ownerRows.sort((a, b) => b.charged - a.charged || b.closing_balance - a.closing_balance || (a.user_id ?? "").localeCompare(b.user_id ?? "")).slice(0, options.limit)
    : ownerRows.sort((a, b) => (a.user_id ?? "").localeCompare(b.user_id ?? ""));
  const clean = ({ is_total: _t, owners: _o, ...row }: RollForwardRow & { is_total: boolean; owners: number }): RollForwardRow => row;
  // An empty month: the empty grouping set over no rows still answers one row (of zeros).
  const total = totalRow ? { ...clean(totalRow), user_id: null, email: null } : emptyTotal();
  return { period, rows: sorted.map(clean), total, owners };
}

/**
 * Per (owner, kind): Σ amount and entries before `start` (at_start, n_start) and before `end`
 * (at_end, n_end), from the month totals and the entries between each instant and its nearest
 * UTC month boundary (nearestUtcMonth). Rows of an owner whose sums are all 0 may appear.
 */
export function ledgerCumulativeSql(start: Date, end: Date): RawBuilder<unknown> {
  const s = nearestUtcMonth(start);
  const e = nearestUtcMonth(end);
  const edge = (t: Date, b: { instant: Date; sign: number }, side: "start" | "end") => {
    if (b.sign === 0) return sql``;
    const [lo, hi] = b.sign > 0 ? [b.instant, t] : [t, b.instant];
    const signed = sql`(${sql.lit(b.sign)})::bigint`;
    const columns = side === "start" ? sql`${signed} * amount, 0::bigint, ${signed}, 0::bigint` : sql`0::bigint, ${signed} * amount, 0::bigint, ${signed}`;
    return sql`UNION ALL SELECT user_id, kind, ${columns} FROM ledger_entries WHERE created_at >= ${lo} AND created_at < ${hi}`;
  };
  return sql`
    SELECT user_id, kind, sum(at_start) AS at_start, sum(at_end) AS at_end, sum(n_start) AS n_start, sum(n_end) AS n_end
    FROM (
      SELECT user_id, kind, amount AS at_start, amount AS at_end, entries AS n_start, entries AS n_end
      FROM ledger_month_totals WHERE month < ${s.month}::date
      UNION ALL
      SELECT user_id, kind, 0::bigint, amount, 0::bigint, entries
      FROM ledger_month_totals WHERE month >= ${s.month}::date AND month < ${e.month}::date
      ${edge(start, s, "start")}
      ${edge(end, e, "end")}
    ) x
    GROUP BY user_id, kind`;
}

function emptyTotal(): RollForwardRow {
  return { user_id: null, email: null, opening_balance: 0, purchased: 0, granted: 0, charged: 0, deducted: 0, expired: 0, closing_balance: 0, corrections: 0, entries: 0 };
}

/** The CSV: header, one row per owner in user id order, then TOTAL. */
export function rollForwardCsv(rf: RollForward): string {
  const record = (row: RollForwardRow): CsvCell[] => ROLL_FORWARD_COLUMNS.map((c) => (c.name === "user_id" ? (row.user_id ?? "TOTAL") : row[c.name]));
  return stringifyCsv(ROLL_FORWARD_COLUMNS.map(({ name, kind }) => ({ name, kind })), [...rf.rows.map(record), record(rf.total)]);
}
