import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, Link, useLoaderData, useSearchParams } from "@remix-run/react";
import type { ColumnDef } from "@tanstack/react-table";
import { DataTable } from "~/components/data-table/data-table";
import { Card, Kpi, PageHeader } from "~/components/ui/page";
import { RECONCILIATION_SHOWS, reconciliationParamsSchema, type DifferenceReason } from "~/domain/billing-reconciliation";
import { formatInt } from "~/domain/format";
import { requireStaff } from "~/lib/auth.server";
import { getDb } from "~/lib/db.server";
import { parseWith, searchObject } from "~/lib/validation";
import { adoptionWatermark } from "~/models/billing-adoption.server";
import { reconciliationPage } from "~/models/billing-reconciliation.server";

export const meta: MetaFunction = () => [{ title: "Billing reconciliation · tokenboard" }];

const PAGE_SIZE = 50;

const SHOW_LABELS: Record<(typeof RECONCILIATION_SHOWS)[number], string> = {
  differs: "Balances that differ",
  all: "All balances",
  overdrawn: "Overdrawn in tokenboard",
  pool: "In a shared household",
};

export async function loader({ request }: LoaderFunctionArgs) {
  await requireStaff(request, "billing:read");
  const parsed = parseWith(reconciliationParamsSchema.passthrough(), searchObject(new URL(request.url).searchParams));
  if (!parsed.ok) throw data({ message: `Invalid filter: ${Object.entries(parsed.errors).map(([k, m]) => `${k} ${m}`).join("; ")}` }, { status: 400 });
  const { sort, dir, show, user, page } = parsed.data;
  const db = getDb();
  const [result, adoption] = await Promise.all([reconciliationPage(db, { sort, dir, show, user, page, pageSize: PAGE_SIZE }), adoptionWatermark(db)]);
  return {
    filter: { show, user: user ?? "" },
    sort: { id: sort, desc: dir === "desc" },
    page: { page, pageSize: PAGE_SIZE, total: result.total },
    adoption,
    rows: result.rows.map((r) => ({
      userId: r.userId, email: r.email, household: r.household, balance: r.balance, calculate: r.calculate, get: r.get,
      legacyUsageCopies: r.legacyUsageCopies, calculateReasons: r.calculateReasons, getReasons: r.getReasons,
    })),
  };
}

type Row = ReturnType<typeof useLoaderData<typeof loader>>["rows"][number];

function Reasons({ value, reasons }: { value: number; reasons: DifferenceReason[] }) {
  return (
    <div className="max-w-md whitespace-normal">
      <div className="font-medium tabular-nums">{formatInt(value)}</div>
      {reasons.length ? (
        <ul className="mt-1 list-disc pl-4 text-xs text-slate-600">
          {reasons.map((r) => (
            <li key={r.reason}>
              <span className="tabular-nums">{r.tokens > 0 ? "+" : "−"}{formatInt(Math.abs(r.tokens))}</span> {r.reason}
            </li>
          ))}
        </ul>
      ) : (
        <div className="text-xs text-slate-500">agrees with tokenboard</div>
      )}
    </div>
  );
}

const columns: ColumnDef<Row>[] = [
  {
    id: "user",
    header: "User",
    cell: ({ row }) => (
      <div>
        <Link to={`/users/${row.original.userId}`} className="font-mono text-xs text-indigo-700 hover:underline">{row.original.userId}</Link>
        {row.original.email ? <div className="text-xs text-slate-500">{row.original.email}</div> : null}
        {row.original.household ? <div className="text-xs text-slate-500">household: {row.original.household}</div> : null}
        {row.original.legacyUsageCopies ? <div className="text-xs text-slate-500">{formatInt(row.original.legacyUsageCopies)} legacy usage copies (counted, not charged)</div> : null}
      </div>
    ),
  },
  {
    id: "balance",
    header: "tokenboard",
    cell: ({ row }) => <span className={`tabular-nums font-medium ${row.original.balance < 0 ? "text-red-700" : ""}`}>{formatInt(row.original.balance)}</span>,
  },
  { id: "calculate", header: "calculate_token_balance", cell: ({ row }) => <Reasons value={row.original.calculate} reasons={row.original.calculateReasons} /> },
  { id: "get", header: "get_user_token_balance", cell: ({ row }) => <Reasons value={row.original.get} reasons={row.original.getReasons} /> },
  {
    id: "difference",
    header: "Largest difference",
    cell: ({ row }) => <span className="tabular-nums">{formatInt(Math.max(Math.abs(row.original.balance - row.original.calculate), Math.abs(row.original.balance - row.original.get)))}</span>,
  },
];

export default function BillingReconciliation() {
  const { filter, sort, page, rows, adoption } = useLoaderData<typeof loader>();
  const [params] = useSearchParams();
  const csv = new URLSearchParams(params);
  csv.delete("page");
  return (
    <>
      <PageHeader
        title="Billing reconciliation"
        description="Per user: tokenboard's balance beside what the seed app's two balance functions would say, and why each differs. The functions are computed from their documented rules; each reason's tokens add up to the difference."
        actions={<a href={`/billing/reconciliation.csv?${csv.toString()}`} className="rounded bg-slate-800 px-3 py-1.5 text-sm text-white hover:bg-slate-700" download>Download CSV</a>}
      />
      <div className="mb-4 grid gap-4 sm:grid-cols-3">
        <Kpi label="Balances listed" value={formatInt(page.total)} hint={SHOW_LABELS[filter.show]} testId="reconciliation-total" />
        <Kpi label="Adopted" value={adoption ? adoption.adoptedAt.slice(0, 10) : "not yet"} hint={adoption ? `${formatInt(adoption.usageRows)} usage rows charged by adoption` : "runs on the next start or npm run cli -- adopt-billing"} />
        <Kpi label="Usage charged up to" value={adoption?.usageMaxCreatedAt ? adoption.usageMaxCreatedAt.replace("T", " ").slice(0, 16) : "–"} hint="newer usage is charged by the charging job" />
      </div>
      <Card className="mb-4">
        <Form method="get" className="flex flex-wrap items-end gap-3 text-sm" aria-label="Reconciliation filters">
          {["sort", "dir"].map((k) => (params.get(k) ? <input key={k} type="hidden" name={k} value={params.get(k) ?? ""} /> : null))}
          <label>
            <span className="block text-slate-700">Show</span>
            <select name="show" defaultValue={filter.show} className="mt-1 rounded border border-slate-300 px-2 py-1">
              {RECONCILIATION_SHOWS.map((s) => <option key={s} value={s}>{SHOW_LABELS[s]}</option>)}
            </select>
          </label>
          <label>
            <span className="block text-slate-700">User id (or its start)</span>
            <input name="user" defaultValue={filter.user} className="mt-1 rounded border border-slate-300 px-2 py-1 font-mono" />
          </label>
          <button type="submit" className="rounded bg-slate-800 px-3 py-1.5 text-white hover:bg-slate-700">Filter</button>
        </Form>
      </Card>
      <Card>
        <DataTable columns={columns} data={rows} sort={sort} page={page} testId="reconciliation-table" caption="Balances reconciled with the seed app's functions"
          emptyTitle="No balance matches" emptyHint="Show all balances, or clear the user filter." />
      </Card>
    </>
  );
}
