import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Link, useLoaderData } from "@remix-run/react";
import { TokenDistribution } from "~/components/charts/token-distribution";
import { MiniTable } from "~/components/ui/mini-table";
import { Badge, Card, Kpi, PageHeader } from "~/components/ui/page";
import { RangeControl } from "~/components/ui/range-control";
import { actionTypesForRoute, formatExpectedRange, getActionType } from "~/domain/action-types";
import { formatInt, formatPercent, formatUsdFromCents } from "~/domain/format";
import { rangeQuery } from "~/domain/range-query";
import { histogramPoints } from "~/domain/token-histogram";
import { analyticsRequest } from "~/lib/analytics-params.server";
import { getDb } from "~/lib/db.server";
import { actionTypeRows } from "../action-types/aggregate";
import { currentOverrides, typeBreakdown, typeHistograms, typeStats } from "../action-types/queries.server";
import { recentOutliers, topUsers } from "./queries.server";

export const meta: MetaFunction<typeof loader> = ({ data }) => [{ title: `${data && "name" in data ? data.name : "Action type"} · tokenboard` }];

export async function loader({ request, params: routeParams }: LoaderFunctionArgs) {
  const { range } = await analyticsRequest(request);
  const name = routeParams.name ?? "";
  if (name.length === 0 || name.length > 100) throw data({ message: "No such action type" }, { status: 404 });
  const db = getDb();
  const [stats, bins, overrides, routes, models, users, outliers] = await Promise.all([
    typeStats(db, range, name),
    typeHistograms(db, range, name),
    currentOverrides(db),
    typeBreakdown(db, range, name, "route"),
    typeBreakdown(db, range, name, "model"),
    topUsers(db, range, { actionType: name, limit: 10 }),
    recentOutliers(db, range, { actionType: name }),
  ]);
  const def = getActionType(name);
  if (!def && stats.length === 0) {
    const seen = await db.selectFrom("token_usage").select("id").where("action_type", "=", name).limit(1).executeTakeFirst();
    if (!seen) throw data({ message: `No action type named ${JSON.stringify(name)}: it is not in the registry and no usage row has it.` }, { status: 404 });
  }
  const [row] = actionTypeRows(stats, bins, overrides).filter((r) => r.action_type === name);
  const allowed = actionTypesForRoute;
  return {
    name,
    label: def?.label ?? name,
    description: def?.description ?? "Not in the action-type registry.",
    registered: def !== undefined,
    expectedRange: def?.expectedRange ?? null,
    expected: def ? formatExpectedRange(def.expectedRange) : "not in registry",
    range: { from: range.from, to: range.to, tz: range.tz },
    summary: row,
    histogram: histogramPoints(bins.map((b) => ({ bin: b.bin, calls: b.calls }))),
    routes: routes.map((r) => ({ ...r, listed: r.key !== null && (allowed(r.key) as string[]).includes(name) })),
    models,
    users,
    outliers,
  };
}

export default function ActionType() {
  const d = useLoaderData<typeof loader>();
  const s = d.summary;
  const q = (extra: Record<string, string | null> = {}) => rangeQuery(d.range, { type: d.name, ...extra });
  return (
    <>
      <PageHeader
        title={d.label}
        description={<>{d.name} · expected {d.expected} · {d.description} {d.registered ? null : <Badge tone="bad">unregistered</Badge>}</>}
        actions={<RangeControl value={d.range} />}
      />
      <div className="grid grid-cols-2 gap-3 md:grid-cols-6">
        <Kpi label="Calls" value={<Link to={`/usage?${q()}`} className="hover:underline">{formatInt(s?.calls ?? 0)}</Link>} testId="type-calls" />
        <Kpi label="Tokens" value={formatInt(s?.tokens ?? 0)} testId="type-tokens" />
        <Kpi label="Cost" value={formatUsdFromCents(s?.cost_cents ?? 0)} />
        <Kpi label="p50 / p95 ≈" value={`${s?.p50 === null || !s ? "—" : formatInt(s.p50)} / ${s?.p95 === null || !s ? "—" : formatInt(s.p95)}`} hint={`max ${s?.max_tokens === null || !s ? "—" : formatInt(s.max_tokens)} (exact)`} />
        <Kpi label="Out of range" value={formatInt((s?.below_range ?? 0) + (s?.above_range ?? 0))} hint={s ? `${formatInt(s.below_range)} below (${formatPercent(s.belowShare)}) · ${formatInt(s.above_range)} above (${formatPercent(s.aboveShare)})` : undefined} />
        <Kpi label="Failures" value={<Link to={`/usage?${q({ success: "false" })}`} className="hover:underline">{formatInt(s?.failures ?? 0)}</Link>} hint={s?.calls ? `${formatPercent(s.failures / s.calls)} of calls` : undefined} />
      </div>
      <div className="mt-4 grid gap-4 xl:grid-cols-3">
        <Card title="Distribution of tokens per call" className="xl:col-span-2">
          {d.histogram.length ? (
            <TokenDistribution points={d.histogram} expected={d.expectedRange} label={`Calls per token bin for ${d.name}, expected band shaded`} />
          ) : (
            <p className="py-16 text-center text-sm text-slate-500">No calls of this type in this range.</p>
          )}
          <p className="mt-2 text-xs text-slate-500">Log-scaled bins (quarter octaves); the green band is the registry's expected range. Percentiles are approximate.</p>
        </Card>
        <Card title="Bins">
          <MiniTable head={["Tokens", "Calls"]} testId="type-bins">
            {d.histogram.map((b) => (
              <tr key={b.bin}>
                <td className="py-0.5 tabular-nums">{formatInt(b.low)}–{formatInt(b.high)}</td>
                <td className="py-0.5 text-right tabular-nums">{formatInt(b.calls)}</td>
              </tr>
            ))}
          </MiniTable>
        </Card>
      </div>
      <div className="mt-4 grid gap-4 lg:grid-cols-2">
        <Card title="Routes">
          <MiniTable head={["Route", "Calls", "Tokens"]} testId="type-routes">
            {d.routes.map((r) => (
              <tr key={r.key ?? "(none)"}>
                <td className="py-1">
                  <Link to={`/usage?${q({ route: r.key ?? "(none)" })}`} className="text-indigo-700 hover:underline">{r.key ?? "(none)"}</Link>{" "}
                  {r.listed ? null : <Badge tone="warn">not listed for this type</Badge>}
                </td>
                <td className="py-1 text-right tabular-nums">{formatInt(r.calls)}</td>
                <td className="py-1 text-right tabular-nums">{formatInt(r.tokens)}</td>
              </tr>
            ))}
          </MiniTable>
        </Card>
        <Card title="Models">
          <MiniTable head={["Model", "Calls", "Tokens", "Cost"]} testId="type-models">
            {d.models.map((m) => (
              <tr key={m.key}>
                <td className="py-1"><Link to={`/usage?${q({ model: m.key })}`} className="text-indigo-700 hover:underline">{m.key}</Link></td>
                <td className="py-1 text-right tabular-nums">{formatInt(m.calls)}</td>
                <td className="py-1 text-right tabular-nums">{formatInt(m.tokens)}</td>
                <td className="py-1 text-right tabular-nums">{formatUsdFromCents(m.cost_cents)}</td>
              </tr>
            ))}
          </MiniTable>
        </Card>
        <Card title="Top users">
          <MiniTable head={["User", "Calls", "Tokens"]} testId="type-users">
            {d.users.map((u) => (
              <tr key={u.user_id}>
                <td className="py-1"><Link to={`/users/${u.user_id}`} className="text-indigo-700 hover:underline">{u.email ?? u.user_id}</Link></td>
                <td className="py-1 text-right tabular-nums"><Link to={`/usage?${q({ user: u.user_id })}`} className="hover:underline">{formatInt(u.calls)}</Link></td>
                <td className="py-1 text-right tabular-nums">{formatInt(u.tokens)}</td>
              </tr>
            ))}
          </MiniTable>
        </Card>
        <Card title="Recent outliers" actions={<Link to={`/outliers?type=${encodeURIComponent(d.name)}`} className="text-xs text-indigo-700 hover:underline">All</Link>}>
          {d.outliers.length ? (
            <ul className="space-y-1 text-sm" data-testid="type-outliers">
              {d.outliers.map((o) => (
                <li key={o.id} className="flex justify-between gap-2">
                  <span><Badge tone={o.status === "open" ? "warn" : "neutral"}>{o.rule}</Badge> {o.message}</span>
                  <span className="shrink-0 text-xs text-slate-500">{o.occurred_at}</span>
                </li>
              ))}
            </ul>
          ) : (
            <p className="text-sm text-slate-500">No outliers flagged for this type in this range.</p>
          )}
        </Card>
      </div>
    </>
  );
}
