import type { ColumnDef } from "@tanstack/react-table";
import { DayLines } from "~/components/charts/simple-charts";
import { DataTable } from "~/components/data-table/data-table";
import { Card, EmptyState } from "~/components/ui/page";
import { formatInt } from "~/domain/format";
import type { BalanceDay } from "~/features/money/rules";

const when = (iso: string) => iso.replace("T", " ").slice(0, 16);

function flow(n: number, sign: 1 | -1) {
  if (n === 0) return <span className="text-slate-300">0</span>;
  const shown = sign * n;
  return <span className={shown < 0 ? "text-rose-700" : "text-emerald-700"}>{shown > 0 ? "+" : ""}{formatInt(shown)}</span>;
}

const dayColumns: ColumnDef<BalanceDay>[] = [
  { id: "date", header: "Day", cell: ({ row }) => row.original.date, enableSorting: false },
  { id: "granted", header: "Grants", cell: ({ row }) => flow(row.original.granted, 1), enableSorting: false, meta: { align: "right" } },
  { id: "purchased", header: "Purchases", cell: ({ row }) => flow(row.original.purchased, 1), enableSorting: false, meta: { align: "right" } },
  { id: "charged", header: "Charges", cell: ({ row }) => flow(row.original.charged, -1), enableSorting: false, meta: { align: "right" } },
  { id: "deducted", header: "Deductions", cell: ({ row }) => flow(row.original.deducted, -1), enableSorting: false, meta: { align: "right" } },
  { id: "expired", header: "Expiries", cell: ({ row }) => flow(row.original.expired, -1), enableSorting: false, meta: { align: "right" } },
  {
    id: "balance",
    header: "Balance at day end",
    cell: ({ row }) => <span className={row.original.balance < 0 ? "font-medium text-rose-700" : "font-medium"}>{formatInt(row.original.balance)}</span>,
    enableSorting: false,
    meta: { align: "right" },
  },
];

/** The running balance over the page's range: a chart of the day-end balance beside the flows of each day that had entries. */
export function BalanceHistoryCard({ history, range }: { history: { opening: number; days: BalanceDay[] }; range: { from: string; to: string; tz: string } }) {
  // The chart shows every day; the table the days that moved the balance, so they are not lost among quiet ones.
  const moved = history.days.filter((d) => d.granted || d.purchased || d.charged || d.deducted || d.expired).reverse();
  const active = moved.length > 0 || history.opening !== 0;
  return (
    <Card title={`Running balance, ${range.from} to ${range.to} (${range.tz})`}>
      {!active ? (
        <EmptyState title="No ledger entries in this range">The balance was 0 throughout. Pick a wider range above.</EmptyState>
      ) : (
        <div className="grid grid-cols-1 gap-4 2xl:grid-cols-[minmax(0,2fr)_minmax(0,3fr)]">
          <div>
            <DayLines data={history.days} lines={[{ key: "balance", name: "Balance at day end", color: "#4f46e5" }]} height={260}
              label="This balance at the end of each day" />
            <p className="mt-1 text-xs text-slate-500" data-testid="balance-opening">Balance before {range.from}: {formatInt(history.opening)} tokens.</p>
          </div>
          <div className="max-h-80 overflow-y-auto">
            <DataTable columns={dayColumns} data={moved} testId="balance-history" caption="Grants, purchases, charges, deductions and expiries per day, and the balance at each day's end, newest first"
              emptyTitle="No entries in this range" emptyHint={`The balance stayed at ${formatInt(history.opening)} tokens.`} />
          </div>
        </div>
      )}
    </Card>
  );
}

export interface UpcomingExpiryRow {
  id: number;
  kind: string;
  amount: number;
  remaining: number;
  expires_at: string;
  created_at: string;
}

export function UpcomingExpiriesCard({ upcoming }: { upcoming: UpcomingExpiryRow[] }) {
  return (
    <Card title="Upcoming expiries">
      {upcoming.length === 0 ? (
        <p className="text-sm text-slate-500" data-testid="upcoming-expiries-empty">No grant with tokens left expires later.</p>
      ) : (
        <table className="w-full text-sm" data-testid="upcoming-expiries">
          <thead>
            <tr className="text-left text-xs uppercase text-slate-500">
              <th scope="col" className="py-1">Expires (UTC)</th>
              <th scope="col" className="py-1 pl-3 text-right">Left</th>
              <th scope="col" className="py-1 pl-3 text-right">Of</th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100">
            {upcoming.map((u) => (
              <tr key={u.id} title={`${u.kind} #${u.id} of ${when(u.created_at)} UTC`}>
                <td className="py-1 tabular-nums">{when(u.expires_at)}</td>
                <td className="py-1 pl-3 text-right font-medium tabular-nums text-amber-700">{formatInt(u.remaining)}</td>
                <td className="py-1 pl-3 text-right tabular-nums text-slate-500">{formatInt(u.amount)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Card>
  );
}
