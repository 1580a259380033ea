import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Link, useLoaderData } from "@remix-run/react";
import { createColumnHelper } from "@tanstack/react-table";
import { DataTable } from "~/components/data-table/data-table";
import { Badge, Card, PageHeader } from "~/components/ui/page";
import { RangeControl } from "~/components/ui/range-control";
import { formatInt, formatPercent, formatUsdFromCents } from "~/domain/format";
import { rangeQuery } from "~/domain/range-query";
import { analyticsRequest, sortAndPage, tableParams } from "~/lib/analytics-params.server";
import { getDb } from "~/lib/db.server";
import { actionTypeRows, type ActionTypeRow } from "./aggregate";
import { currentOverrides, typeHistograms, typeStats } from "./queries.server";

export const meta: MetaFunction = () => [{ title: "Action types · tokenboard" }];

const SORTS = ["action_type", "calls", "tokens", "cost_cents", "p50", "p95", "max_tokens", "below_range", "above_range"] as const;

export async function loader({ request }: LoaderFunctionArgs) {
  const { params, range } = await analyticsRequest(request);
  const table = tableParams(params, SORTS, "tokens", { pageSize: 50 });
  const db = getDb();
  const [stats, bins, overrides] = await Promise.all([typeStats(db, range), typeHistograms(db, range), currentOverrides(db)]);
  const rows = actionTypeRows(stats, bins, overrides);
  const page = sortAndPage(rows, table, (row, key) => row[key]);
  return {
    range: { from: range.from, to: range.to, tz: range.tz },
    rows: page.rows,
    sort: { id: table.sort, desc: table.desc },
    page: { page: table.page, pageSize: table.pageSize, total: page.total },
  };
}

const col = createColumnHelper<ActionTypeRow & { q: string }>();
const right = { meta: { align: "right" as const } };
const count = (n: number, share: number) => (n ? `${formatInt(n)} (${formatPercent(share)})` : "0");

const columns = [
  col.accessor("action_type", {
    header: "Action type",
    cell: (c) => (
      <span>
        <span className="flex items-center gap-1.5">
          <Link to={`/action-types/${encodeURIComponent(c.getValue())}?${c.row.original.q}`} className="font-medium text-indigo-700 hover:underline">{c.getValue()}</Link>
          {c.row.original.registered ? null : <Badge tone="bad">unregistered</Badge>}
        </span>
        <span className="block text-xs text-slate-500">
          expected {c.row.original.expected}
          {c.row.original.override === null ? null : <> · override <span data-testid="override">{formatInt(c.row.original.override)}</span></>}
        </span>
      </span>
    ),
  }),
  col.accessor("calls", {
    header: "Calls", ...right,
    cell: (c) => <Link to={`/usage?${c.row.original.q}&type=${encodeURIComponent(c.row.original.action_type)}`} className="hover:underline">{formatInt(c.getValue())}</Link>,
  }),
  col.accessor("tokens", { header: "Tokens", ...right, cell: (c) => formatInt(c.getValue()) }),
  col.accessor("cost_cents", { header: "Cost", ...right, cell: (c) => formatUsdFromCents(c.getValue()) }),
  col.accessor("p50", { header: "p50 ≈", ...right, cell: (c) => (c.getValue() === null ? "—" : formatInt(c.getValue() as number)) }),
  col.accessor("p95", { header: "p95 ≈", ...right, cell: (c) => (c.getValue() === null ? "—" : formatInt(c.getValue() as number)) }),
  col.accessor("max_tokens", { header: "Max", ...right, cell: (c) => (c.getValue() === null ? "—" : formatInt(c.getValue() as number)) }),
  col.accessor("below_range", { header: "Below", ...right, cell: (c) => count(c.getValue(), c.row.original.belowShare) }),
  col.accessor("above_range", { header: "Above", ...right, cell: (c) => count(c.getValue(), c.row.original.aboveShare) }),
];

export default function ActionTypes() {
  const { range, rows, sort, page } = useLoaderData<typeof loader>();
  const q = rangeQuery(range);
  return (
    <>
      <PageHeader title="Action types" description={`${range.from} to ${range.to} (${range.tz}) · every registered type, and any type seen in the data`} actions={<RangeControl value={range} />} />
      <Card>
        <DataTable columns={columns} data={rows.map((r) => ({ ...r, q }))} sort={sort} page={page} caption="Usage per action type" testId="action-types-table"
          emptyTitle="No action types" />
        <p className="mt-3 text-xs text-slate-500">
          p50 and p95 are read from log-scaled histograms (quarter-octave bins) and are approximate (within about 19%); calls, tokens,
          cost, max and the below/above counts are exact. The override shown under a type is its current value in ai_action_token_overrides.
        </p>
      </Card>
    </>
  );
}
