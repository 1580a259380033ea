import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Form, Link, useLoaderData, useLocation } from "@remix-run/react";
import { createColumnHelper } from "@tanstack/react-table";
import { DataTable } from "~/components/data-table/data-table";
import { Badge, Card, PageHeader } from "~/components/ui/page";
import { RangeControl } from "~/components/ui/range-control";
import { ACTION_TYPE_NAMES } from "~/domain/action-types";
import { formatInt, formatUsdFromCents } from "~/domain/format";
import { analyticsRequest, badRequest } from "~/lib/analytics-params.server";
import { getDb } from "~/lib/db.server";
import { parseWith } from "~/lib/validation";
import { usageFilterSchema, usageRows, type UsageRow } from "./queries.server";

export const meta: MetaFunction = () => [{ title: "Raw usage · tokenboard" }];

const FILTER_KEYS = ["type", "route", "model", "user", "success"] as const;

export async function loader({ request }: LoaderFunctionArgs) {
  const { params, range } = await analyticsRequest(request);
  const input = Object.fromEntries([...FILTER_KEYS, "cursor"].map((k) => [k, params.get(k) || undefined]));
  const parsed = parseWith(usageFilterSchema, input);
  if (!parsed.ok) badRequest(parsed.errors);
  const page = await usageRows(getDb(), range, parsed.data);
  return {
    range: { from: range.from, to: range.to, tz: range.tz },
    filters: Object.fromEntries(FILTER_KEYS.map((k) => [k, params.get(k) ?? ""])) as Record<(typeof FILTER_KEYS)[number], string>,
    deep: Boolean(parsed.data.cursor),
    rows: page.rows,
    next: page.next,
  };
}

const col = createColumnHelper<UsageRow>();
const right = { meta: { align: "right" as const }, enableSorting: false };
const columns = [
  col.accessor("created_at", { header: "Time (UTC)", enableSorting: false }),
  col.accessor("user_id", { header: "User", enableSorting: false, cell: (c) => <Link to={`/users/${c.getValue()}`} title={c.getValue()} className="font-mono text-xs text-indigo-700 hover:underline">{c.getValue().slice(0, 8)}…</Link> }),
  col.accessor("action_type", { header: "Action type", enableSorting: false }),
  col.accessor("route", { header: "Route", enableSorting: false, cell: (c) => c.getValue() ?? <span className="text-slate-400">(none)</span> }),
  col.accessor("model_used", { header: "Model", enableSorting: false }),
  col.accessor("tokens_used", { header: "Tokens", ...right, cell: (c) => formatInt(c.getValue()) }),
  col.accessor("input_tokens", { header: "In", ...right, cell: (c) => (c.getValue() === null ? "—" : formatInt(c.getValue() as number)) }),
  col.accessor("output_tokens", { header: "Out", ...right, cell: (c) => (c.getValue() === null ? "—" : formatInt(c.getValue() as number)) }),
  col.accessor("cost_cents", { header: "Cost", ...right, cell: (c) => formatUsdFromCents(c.getValue()) }),
  col.accessor("success", { header: "Result", enableSorting: false, cell: (c) => (c.getValue() ? <Badge tone="good">ok</Badge> : <Badge tone="bad" >{c.row.original.error_message?.slice(0, 40) ?? "failed"}</Badge>) }),
];

const input = "mt-0.5 block rounded-md border border-slate-300 px-2 py-1 text-sm";

export default function Usage() {
  const { range, filters, rows, next, deep } = useLoaderData<typeof loader>();
  const location = useLocation();
  const nextParams = new URLSearchParams(location.search);
  if (next) nextParams.set("cursor", next);
  const firstParams = new URLSearchParams(location.search);
  firstParams.delete("cursor");
  return (
    <>
      <PageHeader title="Raw usage" description={`The rows behind every aggregate · ${range.from} to ${range.to} (${range.tz}), newest first`} actions={<RangeControl value={range} />} />
      <Card className="mb-4">
        <Form method="get" className="flex flex-wrap items-end gap-3" aria-label="Filters">
          {(["from", "to", "tz"] as const).map((k) => <input key={k} type="hidden" name={k} value={range[k]} />)}
          <label className="text-xs font-medium text-slate-600">Action type
            <input name="type" list="type-options" defaultValue={filters.type} className={`${input} w-52`} />
            <datalist id="type-options">{ACTION_TYPE_NAMES.map((n) => <option key={n} value={n} />)}</datalist>
          </label>
          <label className="text-xs font-medium text-slate-600">Route
            <input name="route" defaultValue={filters.route} placeholder="(none) for no route" className={`${input} w-56`} />
          </label>
          <label className="text-xs font-medium text-slate-600">Model
            <input name="model" defaultValue={filters.model} className={`${input} w-36`} />
          </label>
          <label className="text-xs font-medium text-slate-600">User id
            <input name="user" defaultValue={filters.user} spellCheck={false} className={`${input} w-80 font-mono`} />
          </label>
          <label className="text-xs font-medium text-slate-600">Result
            <select name="success" defaultValue={filters.success} className={input}>
              <option value="">any</option>
              <option value="true">succeeded</option>
              <option value="false">failed</option>
            </select>
          </label>
          <button type="submit" className="rounded-md bg-slate-800 px-3 py-1.5 text-sm font-medium text-white hover:bg-slate-700">Filter</button>
          <Link to={`?${new URLSearchParams(range).toString()}`} className="py-1.5 text-sm text-indigo-700 hover:underline">Clear filters</Link>
        </Form>
      </Card>
      <Card>
        <DataTable columns={columns} data={rows} nextHref={next ? `?${nextParams.toString()}` : null} caption="Usage rows" testId="usage-table"
          emptyTitle="No usage rows match" emptyHint="Widen the range or clear a filter." />
        {deep ? <p className="mt-2 text-sm"><Link to={`?${firstParams.toString()}`} className="text-indigo-700 hover:underline">Back to the newest rows</Link></p> : null}
      </Card>
    </>
  );
}
