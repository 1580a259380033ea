import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, Link, useLoaderData, useSearchParams } from "@remix-run/react";
import type { ColumnDef } from "@tanstack/react-table";
import { z } from "zod";
import { DataTable } from "~/components/data-table/data-table";
import { Card, PageHeader } from "~/components/ui/page";
import { RangeControl } from "~/components/ui/range-control";
import { filterText } from "~/domain/inputs";
import { parseRangeParams } from "~/domain/period";
import { requireStaff } from "~/lib/auth.server";
import { getDb } from "~/lib/db.server";
import { parseWith, searchObject } from "~/lib/validation";
import { KNOWN_AUDIT_ACTIONS, listAudit } from "./queries.server";

export const meta: MetaFunction = () => [{ title: "Audit log · tokenboard" }];

const PAGE_SIZE = 50;

const filterSchema = z.object({
  actor: filterText(200),
  action: filterText(200),
  target: filterText(200),
  page: z.coerce.number({ invalid_type_error: "must be a page number" }).int().min(1).max(1_000_000).default(1),
  sort: z.enum(["at"]).default("at"),
  dir: z.enum(["asc", "desc"]).default("desc"),
});

const show = (v: unknown) => (v === undefined ? "–" : typeof v === "string" ? v : JSON.stringify(v));

/** "balance: 100 → 350; entry_id: 42": one line per field that a write set or changed. */
function describeChange(before: unknown, after: unknown): string[] {
  const b = (before && typeof before === "object" ? before : {}) as Record<string, unknown>;
  const a = (after && typeof after === "object" ? after : {}) as Record<string, unknown>;
  return [...new Set([...Object.keys(b), ...Object.keys(a)])].map((key) =>
    key in b && key in a ? `${key}: ${show(b[key])} → ${show(a[key])}` : key in a ? `${key}: ${show(a[key])}` : `${key}: ${show(b[key])} → –`,
  );
}

function invalid(errors: Record<string, string>): never {
  throw data({ message: `Invalid filter: ${Object.entries(errors).map(([k, m]) => `${k} ${m}`).join("; ")}` }, { status: 400 });
}

export async function loader({ request }: LoaderFunctionArgs) {
  const staff = await requireStaff(request, "audit:read");
  const params = new URL(request.url).searchParams;
  const range = parseRangeParams(params, staff.timezone);
  if (!range.ok) invalid(range.errors);
  const filter = parseWith(filterSchema.passthrough(), searchObject(params));
  if (!filter.ok) invalid(filter.errors);
  const { actor, action, target, page, dir } = filter.data;
  const result = await listAudit(getDb(), { start: range.range.start, end: range.range.end, actor, action, target }, page, PAGE_SIZE, dir === "asc");
  return {
    range: { from: range.range.from, to: range.range.to, tz: range.range.tz },
    filter: { actor: actor ?? "", action: action ?? "", target: target ?? "" },
    sort: { id: "at", desc: dir === "desc" },
    page: { page, pageSize: PAGE_SIZE, total: result.total },
    rows: result.rows.map((r) => ({ ...r, at: r.at.toISOString(), change: describeChange(r.before, r.after) })),
    actions: KNOWN_AUDIT_ACTIONS,
  };
}

type Row = ReturnType<typeof useLoaderData<typeof loader>>["rows"][number];

const columns: ColumnDef<Row>[] = [
  { id: "at", header: "When (UTC)", cell: ({ row }) => row.original.at.replace("T", " ").slice(0, 19) },
  { id: "actor", header: "Actor", cell: ({ row }) => row.original.actor_label, enableSorting: false },
  { id: "action", header: "Action", cell: ({ row }) => <code className="text-xs">{row.original.action}</code>, enableSorting: false },
  {
    id: "target",
    header: "Target",
    enableSorting: false,
    cell: ({ row }) => {
      const { target_type: type, target_id: id } = row.original;
      if (!id) return type;
      const label = id.length > 20 ? `${id.slice(0, 8)}…` : id;
      return type === "user" ? <Link to={`/users/${id}`} title={id} className="text-indigo-700 hover:underline">user {label}</Link> : <span title={id}>{type} {label}</span>;
    },
  },
  {
    id: "change",
    header: "Change",
    enableSorting: false,
    cell: ({ row }) => (
      <ul className="text-xs text-slate-600">
        {row.original.change.map((line) => <li key={line}>{line}</li>)}
      </ul>
    ),
  },
  { id: "reason", header: "Reason", cell: ({ row }) => <span className="block max-w-xs whitespace-normal">{row.original.reason ?? ""}</span>, enableSorting: false },
];

export default function AuditLog() {
  const { range, filter, sort, page, rows, actions } = useLoaderData<typeof loader>();
  const [params] = useSearchParams();
  return (
    <>
      <PageHeader title="Audit log" description="Every staff write, append-only: the database refuses to change or delete a row." actions={<RangeControl value={range} />} />
      <Card className="mb-4">
        <Form method="get" className="flex flex-wrap items-end gap-3 text-sm" aria-label="Audit filters">
          {["from", "to", "tz", "dir"].map((k) => (params.get(k) ? <input key={k} type="hidden" name={k} value={params.get(k) ?? ""} /> : null))}
          <label>
            <span className="block text-slate-700">Actor (email starts with)</span>
            <input name="actor" defaultValue={filter.actor} className="mt-1 rounded border border-slate-300 px-2 py-1" />
          </label>
          <label>
            <span className="block text-slate-700">Action (exact, or family like ledger.)</span>
            <input name="action" list="audit-actions" defaultValue={filter.action} className="mt-1 rounded border border-slate-300 px-2 py-1" />
            <datalist id="audit-actions">{actions.map((a) => <option key={a} value={a} />)}</datalist>
          </label>
          <label>
            <span className="block text-slate-700">Target (id or type)</span>
            <input name="target" defaultValue={filter.target} className="mt-1 rounded border border-slate-300 px-2 py-1" />
          </label>
          <button type="submit" className="rounded bg-slate-800 px-3 py-1.5 text-white hover:bg-slate-700">Filter</button>
        </Form>
      </Card>
      <Card>
        <DataTable columns={columns} data={rows} sort={sort} page={page} testId="audit-table" caption="Audit log entries"
          emptyTitle="No audit entries match" emptyHint="Widen the date range or clear a filter." />
      </Card>
    </>
  );
}
