import { Link, useFetcher } from "@remix-run/react";
import { useMemo } from "react";
import type { ColumnDef } from "@tanstack/react-table";
import { DataTable, type ServerPage, type ServerSort } from "../data-table/data-table";
import { Badge } from "../ui/page";

/** One flag as pages show it (built by listOutlierFlags in app/models/outlier-flags.server.ts). */
export interface OutlierFlagRow {
  id: number;
  rule: string;
  ruleLabel: string;
  when: string;
  actionType: string | null;
  route: string | null;
  userId: string | null;
  numbers: string;
  message: string;
  status: "open" | "acknowledged";
  ackNote: string | null;
  ackBy: string | null;
  ackWhen: string | null;
  usageHref: string;
}

type AckResponse = { ok: true; message: string } | { ok: false; errors: Record<string, string> };

/** Acknowledge with a note; posts to /outliers, so it works on any page that lists flags. */
function AcknowledgeForm({ flag }: { flag: OutlierFlagRow }) {
  const fetcher = useFetcher<AckResponse>();
  const busy = fetcher.state !== "idle";
  const errors = fetcher.data && !fetcher.data.ok ? fetcher.data.errors : {};
  const noteId = `ack-note-${flag.id}`;
  return (
    <fetcher.Form method="post" action="/outliers" className="flex items-start gap-1" data-testid={`ack-form-${flag.id}`}>
      <input type="hidden" name="intent" value="acknowledge" />
      <input type="hidden" name="id" value={flag.id} />
      <div>
        <label htmlFor={noteId} className="sr-only">Note for flag {flag.id}</label>
        <input id={noteId} name="note" required maxLength={500} placeholder="Note (required)" aria-invalid={errors.note ? true : undefined}
          aria-describedby={errors.note ? `${noteId}-error` : undefined}
          className="w-40 rounded border border-slate-300 px-2 py-1 text-xs" />
        {errors.note || errors.id || errors.form ? (
          <p id={`${noteId}-error`} role="alert" className="mt-0.5 text-xs text-rose-600">{errors.note ?? errors.id ?? errors.form}</p>
        ) : null}
      </div>
      <button type="submit" disabled={busy} className="rounded bg-slate-800 px-2 py-1 text-xs font-medium text-white hover:bg-slate-700 disabled:opacity-60">
        {busy ? "Saving…" : "Acknowledge"}
      </button>
    </fetcher.Form>
  );
}

function columns(options: { canAcknowledge: boolean; showUser: boolean }): ColumnDef<OutlierFlagRow>[] {
  const cols: ColumnDef<OutlierFlagRow>[] = [
    { id: "occurred_at", header: "When", accessorKey: "when" },
    { id: "rule", header: "Rule", cell: ({ row }) => <Badge tone={row.original.status === "open" ? "warn" : "neutral"}>{row.original.ruleLabel}</Badge> },
    {
      id: "action_type",
      header: "Type · route",
      cell: ({ row }) => (
        <div className="text-xs">
          {row.original.actionType ? <Link to={`/action-types/${encodeURIComponent(row.original.actionType)}`} className="text-sm text-indigo-700 hover:underline">{row.original.actionType}</Link> : "—"}
          {row.original.route ? <p className="max-w-[14rem] truncate font-mono text-slate-500" title={row.original.route}>{row.original.route}</p> : null}
        </div>
      ),
    },
  ];
  if (options.showUser) {
    cols.push({
      id: "user_id",
      header: "User",
      enableSorting: false,
      cell: ({ row }) => (row.original.userId ? <Link to={`/users/${row.original.userId}`} className="font-mono text-xs text-indigo-700 hover:underline" title={row.original.userId}>{row.original.userId.slice(0, 8)}…</Link> : "—"),
    });
  }
  cols.push(
    // "15,015 vs 100,000–200,000" may wrap after the observed figure (word joiners keep a range
    // whole), so the table fits a narrow card.
    { id: "observed", header: "Numbers", meta: { align: "right" }, cell: ({ row }) => <span className="inline-block max-w-[9rem] whitespace-normal">{row.original.numbers.replaceAll("–", "\u2060–\u2060")}</span> },
    {
      // The message with what can be done about it (acknowledge, or who did and why; the rows
      // behind it), so no action hides past the table's right edge. The rule's badge shows the
      // status (amber open, grey acknowledged) and the Status filter selects it.
      id: "message",
      header: "What happened",
      enableSorting: false,
      cell: ({ row }) => {
        const f = row.original;
        return (
          <div className="min-w-[16rem] max-w-md whitespace-normal">
            <p className="text-slate-700">{f.message}</p>
            <div className="mt-1 flex flex-wrap items-start gap-x-3 gap-y-1 text-xs">
              {f.status === "acknowledged" ? (
                <p className="text-slate-600">
                  <Badge tone="good">acknowledged</Badge> “{f.ackNote}” <span className="text-slate-400">— {f.ackBy ?? "unknown"} · {f.ackWhen}</span>
                </p>
              ) : options.canAcknowledge ? (
                <AcknowledgeForm flag={f} />
              ) : null}
              <Link to={f.usageHref} className="py-1 text-indigo-700 hover:underline">Rows →</Link>
            </div>
          </div>
        );
      },
    },
  );
  return cols;
}

/**
 * Outlier flags as a table: when, rule, type and route, user, numbers, and what happened with
 * the acknowledgement (form or note) and a link to the raw rows. Sorting and paging are
 * server-side when `sort`/`page` are given.
 */
export function OutlierList({
  flags,
  sort,
  page,
  canAcknowledge = false,
  showUser = true,
  emptyHint,
  testId = "outlier-list",
}: {
  flags: OutlierFlagRow[];
  sort?: ServerSort;
  page?: ServerPage;
  canAcknowledge?: boolean;
  showUser?: boolean;
  emptyHint?: string;
  testId?: string;
}) {
  // Stable column definitions: TanStack renders each cell function as a component, so new
  // functions on every render would remount the cells (and lose what is typed in a note).
  const columnDefs = useMemo(() => columns({ canAcknowledge, showUser }), [canAcknowledge, showUser]);
  return (
    <DataTable columns={columnDefs} data={flags} sort={sort} page={page} testId={testId}
      caption="Outlier flags" emptyTitle="No outlier flags" emptyHint={emptyHint} />
  );
}
