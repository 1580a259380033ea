import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, Link, useLoaderData, useNavigation } from "@remix-run/react";
import { StackedSeries } from "~/components/charts/stacked-series";
import { GeneralErrorBoundary } from "~/components/error-boundary";
import { MiniTable } from "~/components/ui/mini-table";
import { Badge, Card, EmptyState, Kpi, PageHeader } from "~/components/ui/page";
import { formatInt, formatPercent, formatUsdFromCents } from "~/domain/format";
import { pivotByDay } from "~/domain/series";
import { requireStaff } from "~/lib/auth.server";
import { getDb, getPool } from "~/lib/db.server";
import { rollForward } from "~/features/money/roll-forward.server";
import { monthlyReport, ReportInputError } from "~/models/reports.server";
import { describeErrors, parseReportParams } from "./params";
import { describeType, failureRate, monthChanges, monthDates, type Change } from "./summary";

const ROLL_FORWARD_SHOWN = 20;

export const meta: MetaFunction = () => [{ title: "Monthly report · tokenboard" }];

const ZONES = [
  "UTC", "America/Los_Angeles", "America/Chicago", "America/New_York", "America/Sao_Paulo", "Europe/London",
  "Europe/Berlin", "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo", "Australia/Adelaide", "Australia/Sydney", "Pacific/Chatham",
];

export async function loader({ request }: LoaderFunctionArgs) {
  const staff = await requireStaff(request, "reports:read");
  const parsed = parseReportParams(new URL(request.url).searchParams, staff.timezone);
  if (!parsed.ok) throw data({ message: `Invalid report parameters: ${describeErrors(parsed.errors)}` }, { status: 400 });
  const { period, previous } = parsed;
  const [report, balances] = await Promise.all([
    monthlyReport(getPool(), period, previous).catch((error: unknown) => {
      if (error instanceof ReportInputError) throw data({ message: `${error.field}: ${error.message}` }, { status: 400 });
      throw error;
    }),
    rollForward(getDb(), period, { limit: ROLL_FORWARD_SHOWN }),
  ]);
  const { from, to } = monthDates(period.month);
  const query = new URLSearchParams({ month: period.month, tz: period.tz }).toString();
  return {
    month: period.month,
    previousMonth: previous.month,
    tz: period.tz,
    partial: period.partial,
    total: report.total,
    changes: monthChanges(report.total, report.previousTotal),
    byType: report.byType.map((row) => ({ ...row, ...describeType(row.action_type ?? "") })),
    topUsers: report.topUsers,
    series: pivotByDay(report.perDay.map((r) => ({ day: r.day, key: r.action_type, value: r.tokens })), from, to),
    ledger: report.ledger,
    outliers: report.outliers,
    balances: { rows: balances.rows, total: balances.total, owners: balances.owners },
    balancesHref: `/reports/balances.csv?${query}`,
    exportHref: `/reports/export.csv?${query}`,
    rawHref: `/reports/raw.csv?${query}`,
  };
}

function ChangeHint({ change, format, label }: { change: Change; format: (n: number) => string; label: string }) {
  if (change.ratio === null) return <span>{label}: {format(change.previous)}</span>;
  const sign = change.ratio > 0 ? "+" : "";
  return (
    <span>
      <span className={change.ratio >= 0 ? "text-emerald-700" : "text-rose-700"}>{sign}{formatPercent(change.ratio)}</span> vs {label} ({format(change.previous)})
    </span>
  );
}

function MonthForm({ month, tz }: { month: string; tz: string }) {
  return (
    <Form method="get" className="flex flex-wrap items-end gap-2" aria-label="Report month and time zone">
      <label className="text-xs font-medium text-slate-600">
        Month
        <input type="month" name="month" defaultValue={month} key={`m-${month}`} required
          className="mt-0.5 block rounded-md border border-slate-300 px-2 py-1 text-sm" />
      </label>
      <label className="text-xs font-medium text-slate-600">
        Time zone
        <input name="tz" list="report-zones" defaultValue={tz} key={`tz-${tz}`} spellCheck={false} required
          className="mt-0.5 block w-48 rounded-md border border-slate-300 px-2 py-1 text-sm" />
        <datalist id="report-zones">
          {ZONES.map((z) => <option key={z} value={z} />)}
        </datalist>
      </label>
      <button type="submit" className="rounded-md bg-slate-800 px-3 py-1.5 text-sm font-medium text-white hover:bg-slate-700">Show report</button>
    </Form>
  );
}

const num = "py-1 pl-3 text-right tabular-nums";
const head = "py-1 pl-3 text-right";

export default function Reports() {
  const r = useLoaderData<typeof loader>();
  const navigation = useNavigation();
  const loading = navigation.state === "loading" && navigation.location?.pathname === "/reports";
  const prev = `${r.previousMonth}`;
  return (
    <>
      <PageHeader
        title={`Monthly report · ${r.month}`}
        description={
          <span className="flex flex-wrap items-center gap-2">
            Month {r.month} in {r.tz}
            {r.partial ? <span data-testid="partial-badge"><Badge tone="warn">partial: the month is not over in this zone</Badge></span> : <Badge tone="good">complete</Badge>}
          </span>
        }
        actions={<MonthForm month={r.month} tz={r.tz} />}
      />
      <div className="mb-4 flex flex-wrap gap-2 text-sm">
        <a href={r.exportHref} download data-testid="export-csv" className="rounded-md bg-indigo-600 px-3 py-1.5 font-medium text-white hover:bg-indigo-500">
          Download CSV (per user and action type)
        </a>
        <a href={r.rawHref} download data-testid="export-raw" className="rounded-md border border-slate-300 bg-white px-3 py-1.5 font-medium text-slate-700 hover:bg-slate-50">
          Download every usage row
        </a>
        <a href={r.balancesHref} download data-testid="export-balances" className="rounded-md border border-slate-300 bg-white px-3 py-1.5 font-medium text-slate-700 hover:bg-slate-50">
          Download balance roll-forward
        </a>
        {loading ? <span role="status" className="self-center text-slate-500">Loading report…</span> : null}
      </div>
      <div className={`grid grid-cols-2 gap-3 md:grid-cols-5 ${loading ? "opacity-60" : ""}`}>
        <Kpi label="Tokens" value={formatInt(r.total.tokens_used)} testId="report-tokens" hint={<ChangeHint change={r.changes.tokens} format={formatInt} label={prev} />} />
        <Kpi label="Calls" value={formatInt(r.total.calls)} testId="report-calls" hint={<ChangeHint change={r.changes.calls} format={formatInt} label={prev} />} />
        <Kpi label="Cost" value={formatUsdFromCents(r.total.cost_cents)} testId="report-cost" hint={<ChangeHint change={r.changes.costCents} format={formatUsdFromCents} label={prev} />} />
        <Kpi label="Active users" value={formatInt(r.total.users)} testId="report-users" hint={<ChangeHint change={r.changes.users} format={formatInt} label={prev} />} />
        <Kpi label="Failure rate" value={formatPercent(failureRate(r.total))} testId="report-failure-rate"
          hint={<>{formatInt(r.total.failures)} failed · {formatPercent(r.changes.failureRate.previous)} in {prev}</>} />
      </div>

      {r.total.calls === 0 ? (
        <div className="mt-4">
          <EmptyState title={`No usage in ${r.month} (${r.tz}).`}>Pick another month above. The CSV still downloads with its header and a TOTAL row of zeros.</EmptyState>
        </div>
      ) : (
        <div className="mt-4 grid gap-4">
          <Card title="Tokens per day by action type">
            <StackedSeries data={r.series.points} series={r.series.keys} label={`Tokens per day of ${r.month}, stacked by action type`} />
          </Card>
          <Card title="By action type (numbers behind the chart)">
            <div className="overflow-x-auto">
              <table className="w-full text-sm" data-testid="report-by-type">
                <thead>
                  <tr className="text-left text-xs uppercase text-slate-500">
                    <th className="py-1">Type</th>
                    <th className={head}>Calls</th>
                    <th className={head}>Tokens</th>
                    <th className={head}>Cost</th>
                    <th className={head}>Expected</th>
                    <th className={head} title="calls below / above the expected range">Below / above</th>
                  </tr>
                </thead>
                <tbody className="divide-y divide-slate-100">
                  {r.byType.map((t) => (
                    <tr key={t.action_type}>
                      <td className="py-1">
                        <Link to={`/action-types/${encodeURIComponent(t.action_type ?? "")}`} className="text-indigo-700 hover:underline" title={t.label}>{t.action_type}</Link>
                        {t.registered ? null : <span className="ml-1 text-xs text-rose-600">unregistered</span>}
                      </td>
                      <td className={num}>{formatInt(t.calls)}</td>
                      <td className={num}>{formatInt(t.tokens_used)}</td>
                      <td className={num}>{formatUsdFromCents(t.cost_cents)}</td>
                      <td className="whitespace-nowrap py-1 pl-3 text-right text-xs text-slate-600">{t.expectedRange}</td>
                      <td className={num}>
                        <span className={t.below_range ? "text-amber-700" : "text-slate-400"}>{formatInt(t.below_range)}</span>
                        {" / "}
                        <span className={t.above_range ? "text-rose-700" : "text-slate-400"}>{formatInt(t.above_range)}</span>
                      </td>
                    </tr>
                  ))}
                </tbody>
                <tfoot>
                  <tr className="border-t border-slate-300 font-semibold">
                    <td className="py-1">Total</td>
                    <td className={num}>{formatInt(r.total.calls)}</td>
                    <td className={num} data-testid="report-by-type-total">{formatInt(r.total.tokens_used)}</td>
                    <td className={num}>{formatUsdFromCents(r.total.cost_cents)}</td>
                    <td />
                    <td className={num}>{formatInt(r.total.below_range)} / {formatInt(r.total.above_range)}</td>
                  </tr>
                </tfoot>
              </table>
            </div>
          </Card>
        </div>
      )}

      <div className="mt-4">
        <BalanceRollForward month={r.month} tz={r.tz} balances={r.balances} />
      </div>

      {/* Top users over the whole width below 1536 px, the two small tables side by side under it: in a row of four their figures had no room. */}
      <div className="mt-4 grid grid-cols-1 gap-4 lg:grid-cols-2 2xl:grid-cols-4">
        <Card title={`Top ${r.topUsers.length || ""} users by tokens`} className="lg:col-span-2">
          <MiniTable testId="report-top-users" head={["User", "Calls", "Tokens", "Cost"]} empty="No users were active this month.">
            {r.topUsers.map((u) => (
              <tr key={u.user_id}>
                <td className="max-w-[14rem] truncate py-1">
                  <Link to={`/users/${u.user_id}`} className="text-indigo-700 hover:underline" title={u.user_id ?? ""}>{u.email ?? u.display_name ?? u.user_id}</Link>
                </td>
                <td className={num}>{formatInt(u.calls)}</td>
                <td className={num}>{formatInt(u.tokens_used)}</td>
                <td className={num}>{formatUsdFromCents(u.cost_cents)}</td>
              </tr>
            ))}
          </MiniTable>
        </Card>
        <Card title="Grants and deductions (ledger)">
          <MiniTable testId="report-ledger" head={["Kind", "Entries", "Tokens"]} empty="No ledger entries in this month.">
            {r.ledger.map((l) => (
              <tr key={l.kind}>
                <td className="py-1 capitalize">{l.kind}</td>
                <td className={num}>{formatInt(l.entries)}</td>
                <td className={`${num} ${l.amount < 0 ? "text-rose-700" : ""}`}>{l.amount > 0 ? "+" : ""}{formatInt(l.amount)}</td>
              </tr>
            ))}
          </MiniTable>
        </Card>
        <Card title="Outlier flags">
          <MiniTable testId="report-outliers" head={["Rule", "Flags", "Open"]} empty="No outliers were flagged in this month.">
            {r.outliers.map((o) => (
              <tr key={o.rule}>
                <td className="py-1">
                  <Link to={`/outliers?rule=${encodeURIComponent(o.rule)}`} className="text-indigo-700 hover:underline">{o.rule}</Link>
                </td>
                <td className={num}>{formatInt(o.flags)}</td>
                <td className={num}>{formatInt(o.open)}</td>
              </tr>
            ))}
          </MiniTable>
        </Card>
      </div>
    </>
  );
}

type RollForwardRow = ReturnType<typeof useLoaderData<typeof loader>>["balances"]["total"];
const FLOW_COLUMNS = [
  ["opening_balance", "Opening"], ["purchased", "+ Purchased"], ["granted", "+ Granted"], ["charged", "− Charged"],
  ["deducted", "− Deducted"], ["expired", "− Expired"], ["closing_balance", "= Closing"],
] as const;

function BalanceRollForward({ month, tz, balances }: { month: string; tz: string; balances: { rows: RollForwardRow[]; total: RollForwardRow; owners: number } }) {
  const shown = balances.owners > balances.rows.length ? ` (the ${balances.rows.length} owners charged most of ${formatInt(balances.owners)}; every owner is in the CSV)` : "";
  const cells = (row: RollForwardRow) => FLOW_COLUMNS.map(([key]) => (
    <td key={key} className={`${num} ${key === "closing_balance" && row[key] < 0 ? "text-rose-700" : ""}`}>{formatInt(row[key])}</td>
  ));
  return (
    <Card title={`Balance roll-forward, ${month} (${tz})${shown}`}>
      {balances.owners === 0 ? (
        <p className="text-sm text-slate-500" data-testid="roll-forward-empty">No balance had tokens or ledger entries in this month. The CSV still has its header and a TOTAL row of zeros.</p>
      ) : (
        <div className="overflow-x-auto">
          <table className="w-full text-sm" data-testid="roll-forward">
            <caption className="sr-only">Opening balance, flows and closing balance per balance owner</caption>
            <thead>
              <tr className="text-left text-xs uppercase text-slate-500">
                <th scope="col" className="py-1">Balance owner</th>
                {FLOW_COLUMNS.map(([key, label]) => <th key={key} scope="col" className={head}>{label}</th>)}
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {balances.rows.map((row) => (
                <tr key={row.user_id}>
                  <td className="max-w-[14rem] truncate py-1">
                    <Link to={`/users/${row.user_id}`} className="text-indigo-700 hover:underline" title={row.user_id ?? ""}>{row.email ?? row.user_id}</Link>
                  </td>
                  {cells(row)}
                </tr>
              ))}
            </tbody>
            <tfoot>
              <tr className="border-t border-slate-300 font-semibold" data-testid="roll-forward-total">
                <td className="py-1">TOTAL</td>
                {cells(balances.total)}
              </tr>
            </tfoot>
          </table>
        </div>
      )}
      <p className="mt-2 text-xs text-slate-500">Opening + purchased + granted − charged − deducted − expired = closing for every owner; a month&apos;s closing is the next month&apos;s opening. Charged is usage less corrections.</p>
    </Card>
  );
}

export function ErrorBoundary() {
  return <GeneralErrorBoundary />;
}
