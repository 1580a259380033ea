import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Link, useLoaderData } from "@remix-run/react";
import { createColumnHelper } from "@tanstack/react-table";
import { sql } from "kysely";
import { DataTable } from "~/components/data-table/data-table";
import { Badge, Card, PageHeader } from "~/components/ui/page";
import { RangeControl } from "~/components/ui/range-control";
import { actionTypesForRoute, isRegisteredActionType } from "~/domain/action-types";
import { formatInt, formatUsdFromCents } from "~/domain/format";
import { rangeQuery } from "~/domain/range-query";
import { analyticsRequest, sortAndPage, tableParams } from "~/lib/analytics-params.server";
import { getDb } from "~/lib/db.server";
import { usageFacts } from "~/models/rollup.server";

export const meta: MetaFunction = () => [{ title: "Routes · tokenboard" }];

interface RouteTypeRow {
  route: string | null;
  action_type: string;
  calls: number;
  tokens: number;
  cost_cents: number;
  failures: number;
}

const SORTS = ["route", "action_type", "calls", "tokens", "cost_cents", "failures"] as const;

export async function loader({ request }: LoaderFunctionArgs) {
  const { params, range } = await analyticsRequest(request);
  const table = tableParams(params, SORTS, "route", { pageSize: 50, defaultDesc: false });
  const onlyFlagged = params.get("flagged") === "1";
  const result = await sql<RouteTypeRow>`
    SELECT route, action_type, sum(calls)::bigint AS calls, sum(tokens)::bigint AS tokens,
           COALESCE(sum(cost_cents), 0)::float8 AS cost_cents, sum(failures)::bigint AS failures
    FROM (${usageFacts(range)}) f
    GROUP BY route, action_type HAVING sum(calls) <> 0`.execute(getDb());
  const rows = result.rows
    .map((r) => ({
      ...r,
      // A route the registry lists must produce only its types; rows without a route cannot be checked.
      unexpected: r.route !== null && !(actionTypesForRoute(r.route) as string[]).includes(r.action_type),
      registered: isRegisteredActionType(r.action_type),
    }))
    .filter((r) => !onlyFlagged || r.unexpected);
  const page = sortAndPage(rows, table, (row, key) => (key === "route" ? `${row.route ?? "~"} ${row.action_type}` : row[key]));
  return {
    range: { from: range.from, to: range.to, tz: range.tz },
    onlyFlagged,
    flaggedCount: rows.filter((r) => r.unexpected).length,
    routeCount: new Set(rows.map((r) => r.route)).size,
    rows: page.rows,
    sort: { id: table.sort, desc: table.desc },
    page: { page: table.page, pageSize: table.pageSize, total: page.total },
  };
}

type Row = RouteTypeRow & { unexpected: boolean; registered: boolean; q: string };
const col = createColumnHelper<Row>();
const right = { meta: { align: "right" as const } };
const columns = [
  col.accessor("route", { header: "Route", cell: (c) => c.getValue() ?? <span className="text-slate-400">(none)</span> }),
  col.accessor("action_type", {
    header: "Action type",
    cell: (c) => (
      <span className="flex items-center gap-1.5">
        <Link to={`/action-types/${encodeURIComponent(c.getValue())}?${c.row.original.q}`} className="text-indigo-700 hover:underline">{c.getValue()}</Link>
        {c.row.original.unexpected ? <Badge tone="bad">not listed for this route</Badge> : null}
        {c.row.original.registered ? null : <Badge tone="bad">unregistered</Badge>}
      </span>
    ),
  }),
  col.accessor("calls", {
    header: "Calls", ...right,
    cell: (c) => <Link to={`/usage?${c.row.original.q}&type=${encodeURIComponent(c.row.original.action_type)}&route=${encodeURIComponent(c.row.original.route ?? "(none)")}`} className="hover:underline">{formatInt(c.getValue())}</Link>,
  }),
  col.accessor("tokens", { header: "Tokens", ...right, cell: (c) => formatInt(c.getValue()) }),
  col.accessor("cost_cents", { header: "Cost", ...right, cell: (c) => formatUsdFromCents(c.getValue()) }),
  col.accessor("failures", { header: "Failures", ...right, cell: (c) => formatInt(c.getValue()) }),
];

export default function RoutesPage() {
  const { range, rows, sort, page, onlyFlagged, flaggedCount, routeCount } = useLoaderData<typeof loader>();
  const q = rangeQuery(range);
  return (
    <>
      <PageHeader title="Routes" description={`Which action types each route produced · ${range.from} to ${range.to} (${range.tz})`} actions={<RangeControl value={range} />} />
      <div className="mb-3 flex items-center gap-3 text-sm">
        <span className="text-slate-600">{formatInt(routeCount)} routes · <strong className={flaggedCount ? "text-rose-700" : ""} data-testid="routes-flagged">{formatInt(flaggedCount)}</strong> route/type pairs the registry does not list</span>
        <Link to={`?${rangeQuery(range, { flagged: onlyFlagged ? null : "1" })}`} className="text-indigo-700 hover:underline">{onlyFlagged ? "Show all" : "Show only flagged"}</Link>
      </div>
      <Card>
        <DataTable columns={columns} data={rows.map((r) => ({ ...r, q }))} sort={sort} page={page} caption="Action types per route" testId="routes-table"
          emptyTitle={onlyFlagged ? "No route produced a type it should not" : "No usage in this range"} />
      </Card>
    </>
  );
}
