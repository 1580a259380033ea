import { Link, useLocation } from "@remix-run/react";
import { flexRender, getCoreRowModel, useReactTable, type ColumnDef, type SortingState } from "@tanstack/react-table";
import { EmptyState } from "../ui/page";

export interface ServerSort {
  id: string;
  desc: boolean;
}

export interface ServerPage {
  page: number;
  pageSize: number;
  total: number;
}

export interface DataTableProps<Row> {
  columns: ColumnDef<Row, any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  data: Row[];
  /** Current server-side sort; a sortable column's header links to the URL that sorts by it. */
  sort?: ServerSort;
  /** Offset pagination (page numbers in the URL). */
  page?: ServerPage;
  /** Keyset pagination: the URL of the next page, if there is one. */
  nextHref?: string | null;
  emptyTitle?: string;
  emptyHint?: string;
  caption?: string;
  testId?: string;
  /** Query parameter names, so two tables can share a page. */
  params?: { sort: string; dir: string; page: string };
}

function hrefWith(search: string, changes: Record<string, string | null>): string {
  const params = new URLSearchParams(search);
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) params.delete(key);
    else params.set(key, value);
  }
  const query = params.toString();
  return query ? `?${query}` : "?";
}

/**
 * One table for every page: TanStack Table renders, the server sorts and paginates. All state
 * is in the URL, so sorting and paging are links (keyboard- and back-button-friendly).
 */
export function DataTable<Row>({
  columns,
  data,
  sort,
  page,
  nextHref,
  emptyTitle = "No rows",
  emptyHint,
  caption,
  testId,
  params = { sort: "sort", dir: "dir", page: "page" },
}: DataTableProps<Row>) {
  const location = useLocation();
  const sorting: SortingState = sort ? [{ id: sort.id, desc: sort.desc }] : [];
  const table = useReactTable({
    data,
    columns,
    state: { sorting },
    manualSorting: true,
    manualPagination: true,
    getCoreRowModel: getCoreRowModel(),
  });

  if (data.length === 0) {
    return <EmptyState title={emptyTitle}>{emptyHint}</EmptyState>;
  }

  const pageCount = page ? Math.max(1, Math.ceil(page.total / page.pageSize)) : 1;
  return (
    <div data-testid={testId}>
      <div className="relative overflow-x-auto">
        <table className="min-w-full divide-y divide-slate-200 text-sm">
          {caption ? <caption className="sr-only">{caption}</caption> : null}
          <thead>
            {table.getHeaderGroups().map((group) => (
              <tr key={group.id}>
                {group.headers.map((header) => {
                  const meta = header.column.columnDef.meta as { align?: "right" } | undefined;
                  const sortable = header.column.columnDef.enableSorting !== false && sort !== undefined;
                  const active = sort?.id === header.column.id;
                  const nextDesc = active ? !sort?.desc : true;
                  const label = flexRender(header.column.columnDef.header, header.getContext());
                  return (
                    <th key={header.id} scope="col"
                      aria-sort={active ? (sort?.desc ? "descending" : "ascending") : undefined}
                      className={`whitespace-nowrap px-3 py-2 text-xs font-semibold uppercase tracking-wide text-slate-500 ${meta?.align === "right" ? "text-right" : "text-left"}`}>
                      {sortable ? (
                        <Link preventScrollReset
                          to={hrefWith(location.search, { [params.sort]: header.column.id, [params.dir]: nextDesc ? "desc" : "asc", [params.page]: null })}
                          className="inline-flex items-center gap-1 hover:text-slate-800">
                          {label}
                          <span aria-hidden className="text-slate-400">{active ? (sort?.desc ? "↓" : "↑") : "↕"}</span>
                        </Link>
                      ) : (
                        label
                      )}
                    </th>
                  );
                })}
              </tr>
            ))}
          </thead>
          <tbody className="divide-y divide-slate-100">
            {table.getRowModel().rows.map((row) => (
              <tr key={row.id} className="hover:bg-slate-50">
                {row.getVisibleCells().map((cell) => {
                  const meta = cell.column.columnDef.meta as { align?: "right" } | undefined;
                  return (
                    <td key={cell.id} className={`whitespace-nowrap px-3 py-1.5 ${meta?.align === "right" ? "text-right tabular-nums" : ""}`}>
                      {flexRender(cell.column.columnDef.cell, cell.getContext())}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {page && page.total > page.pageSize ? (
        <nav aria-label="Pagination" className="mt-3 flex items-center justify-between text-sm text-slate-600">
          <span>
            Page {page.page} of {pageCount} · {page.total.toLocaleString("en-US")} rows
          </span>
          <span className="flex gap-2">
            {page.page > 1 ? (
              <Link preventScrollReset to={hrefWith(location.search, { [params.page]: String(page.page - 1) })} className="rounded border border-slate-300 px-2 py-1 hover:bg-slate-100">
                Previous
              </Link>
            ) : null}
            {page.page < pageCount ? (
              <Link preventScrollReset to={hrefWith(location.search, { [params.page]: String(page.page + 1) })} className="rounded border border-slate-300 px-2 py-1 hover:bg-slate-100">
                Next
              </Link>
            ) : null}
          </span>
        </nav>
      ) : null}
      {nextHref ? (
        <nav aria-label="Pagination" className="mt-3 text-right text-sm">
          <Link to={nextHref} className="rounded border border-slate-300 px-2 py-1 hover:bg-slate-100">Next page</Link>
        </nav>
      ) : null}
    </div>
  );
}
