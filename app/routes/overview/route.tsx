import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Link, useLoaderData } from "@remix-run/react";
import { StackedSeries } from "~/components/charts/stacked-series";
import { Card, Kpi, PageHeader } from "~/components/ui/page";
import { RangeControl } from "~/components/ui/range-control";
import { ACTION_TYPE_NAMES, getActionType } from "~/domain/action-types";
import { formatCompact, formatInt, formatPercent, formatUsdFromCents } from "~/domain/format";
import { filterText } from "~/domain/inputs";
import { parseRangeParams } from "~/domain/period";
import { pivotByDay } from "~/domain/series";
import { requireStaff } from "~/lib/auth.server";
import { getDb } from "~/lib/db.server";
import { outlierCounts, overviewUsage } from "./queries.server";

export const meta: MetaFunction = () => [{ title: "Overview · tokenboard" }];

export async function loader({ request }: LoaderFunctionArgs) {
  const staff = await requireStaff(request);
  const params = new URL(request.url).searchParams;
  const parsed = parseRangeParams(params, staff.timezone);
  if (!parsed.ok) throw data({ message: `Invalid date range: ${Object.entries(parsed.errors).map(([k, m]) => `${k} ${m}`).join("; ")}` }, { status: 400 });
  const range = parsed.range;
  const type = filterText(100).safeParse(params.get("type") ?? undefined);
  if (!type.success) throw data({ message: `Invalid filter: type ${type.error.issues[0]?.message ?? "is invalid"}` }, { status: 400 });
  const actionType = type.data;
  const db = getDb();
  const [{ totals, perDay }, outliers] = await Promise.all([overviewUsage(db, range, { actionType }), outlierCounts(db, range, { actionType })]);
  const byType = new Map<string, { tokens: number; calls: number }>();
  for (const row of perDay) {
    const t = byType.get(row.action_type) ?? { tokens: 0, calls: 0 };
    t.tokens += row.tokens;
    t.calls += row.calls;
    byType.set(row.action_type, t);
  }
  return {
    range: { from: range.from, to: range.to, tz: range.tz },
    actionType: actionType ?? null,
    totals,
    outliers,
    series: pivotByDay(perDay.map((r) => ({ day: r.day, key: r.action_type, value: r.tokens })), range.from, range.to),
    types: [...byType.entries()].map(([name, v]) => ({ name, ...v, registered: getActionType(name) !== undefined })).sort((a, b) => b.tokens - a.tokens),
  };
}

export default function Overview() {
  const { range, actionType, totals, outliers, series, types } = useLoaderData<typeof loader>();
  const failureRate = totals.calls ? totals.failures / totals.calls : 0;
  const query = (extra: Record<string, string>) => `?${new URLSearchParams({ ...range, ...extra }).toString()}`;
  return (
    <>
      <PageHeader
        title={actionType ? `Overview · ${actionType}` : "Overview"}
        description={`${range.from} to ${range.to} (${range.tz})`}
        actions={<RangeControl value={range} />}
      />
      <div className="mb-4 flex flex-wrap items-center gap-2 text-sm">
        <span className="text-slate-600">Action type:</span>
        <Link to={query({})} className={`rounded-full px-2.5 py-0.5 ${actionType ? "bg-white text-slate-700 ring-1 ring-slate-200" : "bg-indigo-600 text-white"}`}>All</Link>
        {ACTION_TYPE_NAMES.map((name) => (
          <Link key={name} to={query({ type: name })} data-testid={`type-filter-${name}`}
            className={`rounded-full px-2.5 py-0.5 ${actionType === name ? "bg-indigo-600 text-white" : "bg-white text-slate-700 ring-1 ring-slate-200 hover:bg-slate-50"}`}>
            {name}
          </Link>
        ))}
      </div>
      <div className="grid grid-cols-2 gap-3 md:grid-cols-5">
        <Kpi label="Tokens" value={formatInt(totals.tokens)} testId="kpi-tokens" />
        <Kpi label="Calls" value={formatInt(totals.calls)} testId="kpi-calls" />
        <Kpi label="Cost" value={formatUsdFromCents(totals.costCents)} testId="kpi-cost" />
        <Kpi label="Active users" value={formatInt(totals.activeUsers)} testId="kpi-users" />
        <Kpi label="Failure rate" value={formatPercent(failureRate)} hint={`${formatInt(totals.failures)} failed calls`} testId="kpi-failure-rate" />
      </div>
      <div className="mt-4 grid gap-4 xl:grid-cols-5">
        <Card title="Tokens per day by action type" className="xl:col-span-3">
          {totals.calls ? (
            <StackedSeries data={series.points} series={series.keys} label="Tokens per day, stacked by action type" />
          ) : (
            <p className="py-16 text-center text-sm text-slate-500">No usage in this range. Pick another range above.</p>
          )}
        </Card>
        <Card title="By action type" className="xl:col-span-2">
          <div className="overflow-x-auto">
          <table className="w-full text-[13px]" data-testid="overview-by-type">
            <thead>
              <tr className="text-left text-xs uppercase text-slate-500">
                <th className="py-1">Type</th>
                <th className="py-1 text-right">Calls</th>
                <th className="py-1 text-right">Tokens</th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {types.map((t) => (
                <tr key={t.name}>
                  <td className="py-1">
                    <Link to={query({ type: t.name })} className="text-indigo-700 hover:underline">{t.name}</Link>
                    <Link to={`/action-types/${encodeURIComponent(t.name)}?${new URLSearchParams(range).toString()}`} className="ml-1 text-xs text-slate-400 hover:text-indigo-700" aria-label={`${t.name} details`}>↗</Link>
                    {t.registered ? null : <span className="block text-[11px] text-rose-600">unregistered</span>}
                  </td>
                  <td className="py-1 text-right tabular-nums">
                    <Link to={`/usage?${new URLSearchParams({ ...range, type: t.name }).toString()}`} className="hover:underline" title="Raw rows">{formatInt(t.calls)}</Link>
                  </td>
                  <td className="py-1 text-right tabular-nums" title={`${formatInt(t.tokens)} tokens`}>{formatCompact(t.tokens)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          </div>
        </Card>
      </div>
      <Card title="Outliers in this range" className="mt-4" actions={<Link to="/outliers" className="text-xs text-indigo-700 hover:underline">All outliers</Link>}>
        {outliers.length ? (
          <ul className="grid gap-2 text-sm sm:grid-cols-3" data-testid="overview-outliers">
            {outliers.map((o) => (
              <li key={o.rule} className="flex justify-between rounded border border-slate-100 px-3 py-1.5">
                <Link to={`/outliers?${new URLSearchParams({ rule: o.rule, ...(actionType ? { type: actionType } : {}) }).toString()}`} className="text-indigo-700 hover:underline">{o.rule}</Link>
                <span className="tabular-nums text-slate-700">{formatInt(o.open)} open / {formatInt(o.total)}</span>
              </li>
            ))}
          </ul>
        ) : (
          <p className="text-sm text-slate-500">No outliers flagged in this range.</p>
        )}
      </Card>
    </>
  );
}
