import { Children, type ReactNode } from "react";

/**
 * A small table inside a card: a label column, then right-aligned figures. Rows are the
 * caller's <tr>s. With `empty`, no rows show that sentence instead of an empty table.
 */
export function MiniTable({ head, children, testId, empty, caption }: { head: string[]; children: ReactNode; testId?: string; empty?: string; caption?: string }) {
  if (empty !== undefined && Children.count(children) === 0) return <p className="text-sm text-slate-500">{empty}</p>;
  return (
    <table className="w-full text-sm" data-testid={testId}>
      {caption ? <caption className="sr-only">{caption}</caption> : null}
      <thead>
        <tr className="text-left text-xs uppercase text-slate-500">
          {head.map((h, i) => <th key={h} scope="col" className={`py-1 ${i ? "pl-3 text-right" : ""}`}>{h}</th>)}
        </tr>
      </thead>
      <tbody className="divide-y divide-slate-100">{children}</tbody>
    </table>
  );
}
