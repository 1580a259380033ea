import { Form, Link, useActionData, useNavigation } from "@remix-run/react";
import type { ColumnDef } from "@tanstack/react-table";
import { useState } from "react";
import { StackedSeries } from "~/components/charts/stacked-series";
import { DataTable } from "~/components/data-table/data-table";
import { OutlierList, type OutlierFlagRow } from "~/components/outliers/outlier-list";
import { Badge, Card, EmptyState } from "~/components/ui/page";
import { formatInt } from "~/domain/format";
import type { StaffRole } from "../../../db/types";
import type { AdjustActionData } from "./route";

const when = (iso: string) => iso.replace("T", " ").slice(0, 16);

const typeColumns: ColumnDef<{ name: string; tokens: number; calls: number }>[] = [
  { id: "name", header: "Type", cell: ({ row }) => row.original.name, enableSorting: false },
  { id: "calls", header: "Calls", cell: ({ row }) => formatInt(row.original.calls), enableSorting: false, meta: { align: "right" } },
  { id: "tokens", header: "Tokens", cell: ({ row }) => formatInt(row.original.tokens), enableSorting: false, meta: { align: "right" } },
];

export function UsageCard({ series, byType, range }: { series: { points: Record<string, number | string>[]; keys: string[] }; byType: { name: string; tokens: number; calls: number }[]; range: { from: string; to: string; tz: string } }) {
  return (
    <Card title={`Usage by action type, ${range.from} to ${range.to} (${range.tz})`}>
      {byType.length === 0 ? (
        <EmptyState title="No usage in this range">Pick a wider range above.</EmptyState>
      ) : (
        <div className="grid grid-cols-1 gap-4 2xl:grid-cols-3">
          <div className="2xl:col-span-2">
            <StackedSeries data={series.points} series={series.keys} height={220} label="This user's tokens per day, stacked by action type" />
          </div>
          <DataTable columns={typeColumns} data={byType} testId="user-usage-by-type" caption="Calls and tokens by action type in the range" />
        </div>
      )}
    </Card>
  );
}

interface LedgerRow {
  id: number;
  kind: string;
  amount: number;
  balance_after: number;
  reason: string | null;
  actor_label: string;
  forced: boolean;
  expires_at: string | null;
  remaining: number | null;
  created_at: string;
}

const ledgerColumns: ColumnDef<LedgerRow>[] = [
  { id: "created_at", header: "When (UTC)", cell: ({ row }) => when(row.original.created_at), enableSorting: false },
  { id: "kind", header: "Kind", cell: ({ row }) => <>{row.original.kind}{row.original.forced ? <> <Badge tone="bad">{row.original.kind === "usage" || row.original.kind === "correction" ? "overdraft" : "forced"}</Badge></> : null}</>, enableSorting: false },
  { id: "amount", header: "Amount", cell: ({ row }) => <span className={row.original.amount < 0 ? "text-rose-700" : "text-emerald-700"}>{row.original.amount > 0 ? "+" : ""}{formatInt(row.original.amount)}</span>, enableSorting: false, meta: { align: "right" } },
  { id: "balance_after", header: "Balance after", cell: ({ row }) => formatInt(row.original.balance_after), enableSorting: false, meta: { align: "right" } },
  { id: "reason", header: "Reason", cell: ({ row }) => <span className="block max-w-xs whitespace-normal">{row.original.reason ?? ""}</span>, enableSorting: false },
  { id: "actor", header: "By", cell: ({ row }) => row.original.actor_label, enableSorting: false },
  {
    id: "expires",
    header: "Expires",
    enableSorting: false,
    cell: ({ row }) => (row.original.expires_at ? `${when(row.original.expires_at)} (${formatInt(row.original.remaining ?? 0)} left)` : ""),
  },
];

export function LedgerCard({ ledger }: { ledger: { page: number; pageSize: number; total: number; entries: LedgerRow[] } }) {
  return (
    <Card title="Ledger">
      <DataTable columns={ledgerColumns} data={ledger.entries} page={{ page: ledger.page, pageSize: ledger.pageSize, total: ledger.total }}
        params={{ sort: "lsort", dir: "ldir", page: "lpage" }} testId="ledger-table" caption="Ledger entries, newest first"
        emptyTitle="No ledger entries" emptyHint="This user's balance is 0 until tokens are granted or purchased." />
    </Card>
  );
}

interface PoolView {
  household_id: string;
  name: string;
  owner_id: string;
  members: { user_id: string; role: string | null; spent: number }[];
}

/** A shared pool: whose balance it is, and who spent what of it (charges net of corrections). */
export function PoolCard({ pool, userId }: { pool: PoolView; userId: string }) {
  const total = pool.members.reduce((sum, m) => sum + m.spent, 0);
  const mine = pool.members.find((m) => m.user_id === userId)?.spent ?? 0;
  const owner = pool.owner_id === userId;
  const columns: ColumnDef<PoolView["members"][number]>[] = [
    {
      id: "user",
      header: "Member",
      enableSorting: false,
      cell: ({ row }) => (row.original.user_id === userId ? <span className="font-mono text-xs font-semibold">{row.original.user_id} (this user)</span> : <Link to={`/users/${row.original.user_id}`} className="font-mono text-xs text-indigo-700 hover:underline">{row.original.user_id}</Link>),
    },
    { id: "role", header: "Role", cell: ({ row }) => (row.original.user_id === pool.owner_id ? "owner" : (row.original.role ?? "member")), enableSorting: false },
    { id: "spent", header: "Spent (tokens)", cell: ({ row }) => formatInt(row.original.spent), enableSorting: false, meta: { align: "right" } },
    { id: "share", header: "Share", cell: ({ row }) => (total > 0 ? `${((row.original.spent / total) * 100).toFixed(1)}%` : "–"), enableSorting: false, meta: { align: "right" } },
  ];
  return (
    <Card title={`Shared pool: ${pool.name}`}>
      <p className="mb-2 text-sm text-slate-600" data-testid="pool-summary">
        {owner ? "This user owns the pool: its members' usage is charged to this balance." : <>This user spends the pool of <Link to={`/users/${pool.owner_id}`} className="font-mono text-xs text-indigo-700 hover:underline">{pool.owner_id}</Link>; the balance shown is the pool's, and grants or deductions here go to it.</>}
        {" "}This user's spending: {formatInt(mine)} of {formatInt(total)} tokens.
      </p>
      <DataTable columns={columns} data={pool.members} testId="pool-members" caption="Spending of the pool by member" emptyTitle="No spending yet" />
    </Card>
  );
}

interface UsageRow {
  id: string;
  created_at: string;
  action_type: string;
  model_used: string;
  route: string | null;
  tokens_used: number;
  success: boolean;
}

const usageColumns: ColumnDef<UsageRow>[] = [
  { id: "created_at", header: "When (UTC)", cell: ({ row }) => when(row.original.created_at), enableSorting: false },
  { id: "action_type", header: "Type", cell: ({ row }) => row.original.action_type, enableSorting: false },
  { id: "route", header: "Route", cell: ({ row }) => row.original.route ?? "", enableSorting: false },
  { id: "model", header: "Model", cell: ({ row }) => row.original.model_used, enableSorting: false },
  { id: "tokens", header: "Tokens", cell: ({ row }) => formatInt(row.original.tokens_used), enableSorting: false, meta: { align: "right" } },
  { id: "success", header: "Result", cell: ({ row }) => (row.original.success ? <Badge tone="good">ok</Badge> : <Badge tone="bad">failed</Badge>), enableSorting: false },
];

export function RecentUsageCard({ usage }: { usage: { rows: UsageRow[]; nextHref: string | null; firstHref: string | null } }) {
  return (
    <Card title="Recent calls" actions={usage.firstHref ? <Link to={usage.firstHref} className="text-sm text-indigo-700 hover:underline">Newest</Link> : undefined}>
      <DataTable columns={usageColumns} data={usage.rows} nextHref={usage.nextHref} testId="recent-usage" caption="Recent calls, newest first" emptyTitle="No calls recorded for this user" />
    </Card>
  );
}

export function OutliersCard({ outliers }: { outliers: { flags: OutlierFlagRow[]; total: number; canAcknowledge: boolean } }) {
  const more = outliers.total > outliers.flags.length ? ` (newest ${outliers.flags.length} of ${formatInt(outliers.total)})` : "";
  return (
    <Card title={`Open outliers${more}`} actions={<Link to="/outliers" className="text-sm text-indigo-700 hover:underline">All outliers</Link>}>
      {/* Contains the list's visually hidden labels, which would otherwise widen the whole page. */}
      <div className="relative overflow-hidden">
        <OutlierList flags={outliers.flags} canAcknowledge={outliers.canAcknowledge} showUser={false} testId="user-outliers" emptyHint="No open outliers for this user." />
      </div>
    </Card>
  );
}

const inputClass = "mt-1 w-full rounded border border-slate-300 px-2 py-1";

function FieldError({ id, message }: { id: string; message?: string }) {
  return message ? <span id={id} role="alert" className="mt-0.5 block text-xs text-rose-700">{message}</span> : null;
}

/**
 * Grant/deduct in two steps: review (shows the balance after), then confirm. Both steps
 * carry the same idempotency key, so a double submit of the confirmation makes one entry.
 */
export function AdjustForm({ idempotencyKey, role, supportLimit, supportDailyLimit }: { idempotencyKey: string; role: StaffRole; supportLimit: number; supportDailyLimit: number }) {
  const result = useActionData<AdjustActionData>();
  const navigation = useNavigation();
  const busy = navigation.state === "submitting";
  const values = result?.values ?? {};
  const errors = result?.step === "error" ? result.errors : {};
  const [kind, setKind] = useState(values.kind ?? "grant");

  if (result?.step === "confirm") {
    const v = result.values;
    return (
      <Card title="Confirm adjustment">
        <Form method="post" className="space-y-3 text-sm" data-testid="confirm-form">
          {Object.entries(v).filter(([k]) => k !== "intent").map(([k, val]) => <input key={k} type="hidden" name={k} value={val} />)}
          <input type="hidden" name="intent" value="apply" />
          <p>
            {v.kind === "grant" ? "Grant" : "Deduct"} <strong>{formatInt(Number(v.amount))}</strong> tokens{result.expiresAt ? `, expiring ${when(result.expiresAt)} UTC` : ""}.
          </p>
          <p data-testid="confirm-balance">
            Balance <span className="tabular-nums">{formatInt(result.balance)}</span> → <strong className="tabular-nums">{formatInt(result.balanceAfter)}</strong>
          </p>
          <p className="text-slate-600">Reason: {v.reason}</p>
          <div className="flex gap-2">
            <button type="submit" disabled={busy} className="rounded bg-indigo-600 px-3 py-1.5 font-medium text-white hover:bg-indigo-500 disabled:opacity-60">{busy ? "Saving…" : `Confirm ${v.kind}`}</button>
            <Link to="." replace className="rounded border border-slate-300 px-3 py-1.5 hover:bg-slate-100">Back</Link>
          </div>
        </Form>
      </Card>
    );
  }

  return (
    <Card title="Grant or deduct tokens">
      <Form method="post" className="space-y-3 text-sm" data-testid="adjust-form">
        <input type="hidden" name="intent" value="confirm" />
        <input type="hidden" name="idempotency_key" value={values.idempotency_key ?? idempotencyKey} />
        {result?.step === "error" && result.message ? <p role="alert" className="rounded border border-rose-200 bg-rose-50 px-2 py-1.5 text-rose-800" data-testid="adjust-error">{result.message}</p> : null}
        <fieldset className="flex gap-4">
          <legend className="sr-only">Kind</legend>
          {(["grant", "deduct"] as const).map((k) => (
            <label key={k} className="flex items-center gap-1">
              <input type="radio" name="kind" value={k} checked={kind === k} onChange={() => setKind(k)} /> {k === "grant" ? "Grant" : "Deduct"}
            </label>
          ))}
        </fieldset>
        <label className="block">
          <span className="text-slate-700">Amount (tokens)</span>
          <input name="amount" inputMode="numeric" required defaultValue={values.amount} aria-invalid={errors.amount ? true : undefined} aria-describedby="amount-error" className={inputClass} />
          <FieldError id="amount-error" message={result?.message ? undefined : errors.amount} />
          {role === "support" ? <span className="mt-0.5 block text-xs text-slate-500">Up to {formatInt(supportLimit)} per adjustment and {formatInt(supportDailyLimit)} per user in any 24 hours; ask an admin for more.</span> : null}
        </label>
        <label className="block">
          <span className="text-slate-700">Reason (required)</span>
          <textarea name="reason" required rows={2} defaultValue={values.reason} aria-invalid={errors.reason ? true : undefined} aria-describedby="reason-error" className={inputClass} />
          <FieldError id="reason-error" message={errors.reason} />
        </label>
        {kind === "grant" ? (
          <label className="block">
            <span className="text-slate-700">Expires on (optional)</span>
            <input type="date" name="expires_on" defaultValue={values.expires_on} aria-describedby="expires-error" className={inputClass} />
            <FieldError id="expires-error" message={errors.expires_on} />
          </label>
        ) : role === "admin" ? (
          <label className="flex items-center gap-2">
            <input type="checkbox" name="force" defaultChecked={values.force === "on"} /> Force below zero (admin; the reason must say why)
          </label>
        ) : null}
        <button type="submit" disabled={busy} className="rounded bg-slate-800 px-3 py-1.5 font-medium text-white hover:bg-slate-700 disabled:opacity-60">
          {busy ? "Checking…" : "Review"}
        </button>
      </Form>
    </Card>
  );
}
