import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Form, Link, useLoaderData, useNavigation } from "@remix-run/react";
import { createColumnHelper } from "@tanstack/react-table";
import { sql } from "kysely";
import { DataTable } from "~/components/data-table/data-table";
import { Badge, Card, EmptyState, PageHeader } from "~/components/ui/page";
import { RangeControl } from "~/components/ui/range-control";
import { formatInt, formatUsdFromCents } from "~/domain/format";
import { filterText } from "~/domain/inputs";
import { rangeQuery } from "~/domain/range-query";
import { analyticsRequest, badRequest, tableParams } from "~/lib/analytics-params.server";
import { getDb } from "~/lib/db.server";
import { activeUserCountSql, userFacts } from "~/models/rollup.server";
import { recentOutliers, topUsers, type TopUser } from "../action-type/queries.server";
import { searchUsers } from "./queries.server";

export const meta: MetaFunction = () => [{ title: "Users · tokenboard" }];

const SORTS = ["tokens", "cost_cents", "calls"] as const;
const querySchema = filterText(200);

export async function loader({ request }: LoaderFunctionArgs) {
  const { params, range } = await analyticsRequest(request);
  const q = querySchema.safeParse(params.get("q") || undefined);
  if (!q.success) badRequest({ q: q.error.issues[0]?.message ?? "is invalid" });
  const table = tableParams(params, SORTS, "tokens", { pageSize: 25 });
  const db = getDb();
  const [matches, top, active, spikes] = await Promise.all([
    q.data ? searchUsers(db, q.data) : Promise.resolve(null),
    topUsers(db, range, { orderBy: table.sort, limit: table.pageSize, offset: (table.page - 1) * table.pageSize }),
    sql<{ n: number }>`SELECT ${activeUserCountSql(userFacts(range))}::bigint AS n`.execute(db),
    recentOutliers(db, range, { rule: "user_spike" }, 8),
  ]);
  return {
    range: { from: range.from, to: range.to, tz: range.tz },
    q: q.data ?? "",
    matches,
    top,
    sort: { id: table.sort, desc: true },
    page: { page: table.page, pageSize: table.pageSize, total: active.rows[0]?.n ?? 0 },
    spikes,
  };
}

const col = createColumnHelper<TopUser & { q: string }>();
const right = { meta: { align: "right" as const } };
const columns = [
  col.accessor("user_id", {
    header: "User", enableSorting: false,
    cell: (c) => (
      <Link to={`/users/${c.getValue()}`} className="text-indigo-700 hover:underline">
        {c.row.original.email ?? <span className="font-mono text-xs">{c.getValue()}</span>}
      </Link>
    ),
  }),
  col.accessor("calls", { header: "Calls", ...right, cell: (c) => <Link to={`/usage?${c.row.original.q}&user=${c.row.original.user_id}`} className="hover:underline">{formatInt(c.getValue())}</Link> }),
  col.accessor("tokens", { header: "Tokens", ...right, cell: (c) => formatInt(c.getValue()) }),
  col.accessor("cost_cents", { header: "Cost", ...right, cell: (c) => formatUsdFromCents(c.getValue()) }),
  col.accessor("failures", { header: "Failures", ...right, enableSorting: false, cell: (c) => formatInt(c.getValue()) }),
];

export default function Users() {
  const { range, q, matches, top, sort, page, spikes } = useLoaderData<typeof loader>();
  const navigation = useNavigation();
  const searching = navigation.state === "loading" && navigation.location?.pathname === "/users";
  const rq = rangeQuery(range);
  return (
    <>
      <PageHeader title="Users" description={`${range.from} to ${range.to} (${range.tz})`} actions={<RangeControl value={range} />} />
      <Card title="Find a user" className="mb-4">
        <Form method="get" role="search" className="flex flex-wrap items-end gap-2">
          {(["from", "to", "tz"] as const).map((k) => <input key={k} type="hidden" name={k} value={range[k]} />)}
          <label className="text-xs font-medium text-slate-600">
            User id or email
            <input name="q" type="search" defaultValue={q} placeholder="a UUID, or the start of an email" spellCheck={false}
              className="mt-0.5 block w-96 rounded-md border border-slate-300 px-2 py-1 text-sm" />
          </label>
          <button type="submit" className="rounded-md bg-slate-800 px-3 py-1.5 text-sm font-medium text-white hover:bg-slate-700">{searching ? "Searching…" : "Search"}</button>
        </Form>
        {matches === null ? null : matches.length ? (
          <ul className="mt-3 divide-y divide-slate-100 text-sm" data-testid="user-matches">
            {matches.map((m) => (
              <li key={m.user_id} className="flex justify-between py-1.5">
                <Link to={`/users/${m.user_id}`} className="text-indigo-700 hover:underline">{m.email ?? m.user_id}</Link>
                <span className="font-mono text-xs text-slate-500">{m.user_id}</span>
              </li>
            ))}
          </ul>
        ) : (
          <div className="mt-3"><EmptyState title={`No user matches ${JSON.stringify(q)}`}>Search by a full user id or the beginning of an email address.</EmptyState></div>
        )}
      </Card>
      <div className="grid grid-cols-1 gap-4 xl:grid-cols-3">
        <Card title={`Top users by ${sort.id === "cost_cents" ? "cost" : sort.id}`} className="xl:col-span-2"
          actions={<span className="flex gap-2 text-xs">{SORTS.map((s) => <Link key={s} to={`?${rangeQuery(range, { q, sort: s })}`} className={s === sort.id ? "font-semibold text-indigo-700" : "text-slate-600 hover:underline"}>{s === "cost_cents" ? "cost" : s}</Link>)}</span>}>
          <DataTable columns={columns} data={top.map((t) => ({ ...t, q: rq }))} sort={sort} page={page} caption="Top users" testId="top-users" emptyTitle="No usage in this range" />
        </Card>
        <Card title="Users with spikes" actions={<Link to="/outliers?rule=user_spike" className="text-xs text-indigo-700 hover:underline">All</Link>}>
          {spikes.length ? (
            <ul className="space-y-1.5 text-sm" data-testid="user-spikes">
              {spikes.map((s) => (
                <li key={s.id}>
                  <Badge tone={s.status === "open" ? "warn" : "neutral"}>{s.status}</Badge>{" "}
                  <Link to={`/users/${s.user_id}`} title={s.user_id ?? ""} className="font-mono text-xs text-indigo-700 hover:underline">{s.user_id?.slice(0, 8)}…</Link>
                  <p className="text-xs text-slate-600">{s.message}</p>
                </li>
              ))}
            </ul>
          ) : (
            <p className="text-sm text-slate-500">No daily spikes flagged in this range (the outlier job compares each user&apos;s day with their own median).</p>
          )}
        </Card>
      </div>
    </>
  );
}
