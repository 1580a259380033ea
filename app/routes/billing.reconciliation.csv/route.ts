import type { LoaderFunctionArgs } from "@remix-run/node";
import { stringifyCsv, type CsvColumnKind } from "~/domain/csv";
import { reconciliationParamsSchema, type DifferenceReason } from "~/domain/billing-reconciliation";
import { requireStaff } from "~/lib/auth.server";
import { getDb } from "~/lib/db.server";
import { jsonError } from "~/lib/http.server";
import { parseWith, searchObject } from "~/lib/validation";
import { reconciliationRows } from "~/models/billing-reconciliation.server";

const COLUMNS: { name: string; kind: CsvColumnKind }[] = [
  { name: "user_id", kind: "text" },
  { name: "email", kind: "text" },
  { name: "household", kind: "text" },
  { name: "tokenboard_balance", kind: "number" },
  { name: "calculate_token_balance", kind: "number" },
  { name: "calculate_difference_reasons", kind: "text" },
  { name: "get_user_token_balance", kind: "number" },
  { name: "get_difference_reasons", kind: "text" },
  { name: "legacy_usage_copies", kind: "number" },
];

/** "reason (+N); reason (−N)": N is what the reason adds to tokenboard's balance over the function's; empty when they agree. */
const describe = (reasons: DifferenceReason[]) => (reasons.length ? reasons.map((r) => `${r.reason} (${r.tokens > 0 ? "+" : "-"}${Math.abs(r.tokens)})`).join("; ") : null);

/** GET /billing/reconciliation.csv: every row of the page's filter, in its order (docs in README). */
export async function loader({ request }: LoaderFunctionArgs) {
  await requireStaff(request, "billing:read");
  const parsed = parseWith(reconciliationParamsSchema.passthrough(), searchObject(new URL(request.url).searchParams));
  if (!parsed.ok) return jsonError(400, Object.entries(parsed.errors).map(([k, m]) => `${k} ${m}`).join("; "), { errors: parsed.errors });
  const { sort, dir, show, user } = parsed.data;
  const rows = await reconciliationRows(getDb(), { sort, dir, show, user });
  const body = stringifyCsv(COLUMNS, rows.map((r) => [r.userId, r.email, r.household, r.balance, r.calculate, describe(r.calculateReasons), r.get, describe(r.getReasons), r.legacyUsageCopies]));
  return new Response(body, {
    headers: {
      "content-type": "text/csv; charset=utf-8",
      "content-disposition": `attachment; filename="tokenboard-billing-reconciliation-${show}.csv"`,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    },
  });
}
