import type { LoaderFunctionArgs } from "@remix-run/node";
import { z } from "zod";
import { readDeliveredReport } from "~/features/alerts/reports.server";
import { requireStaff } from "~/lib/auth.server";
import { getDb } from "~/lib/db.server";

/** A monthly report exactly as it was delivered (the link in report.delivered alerts). */
export async function loader({ request, params }: LoaderFunctionArgs) {
  await requireStaff(request, "reports:read");
  const id = z.string().uuid().safeParse(params.reportId);
  if (!id.success) throw new Response("No such report", { status: 404 });
  const report = await readDeliveredReport(getDb(), id.data);
  if (!report) throw new Response("No such report", { status: 404 });
  return new Response(new Uint8Array(report.csv), {
    headers: {
      "content-type": "text/csv; charset=utf-8",
      "content-disposition": `attachment; filename="tokenboard-${report.month}-${report.zone.replace(/[^A-Za-z0-9_-]/g, "_")}.csv"`,
      "x-content-sha256": report.sha256,
      "cache-control": "private, no-store",
    },
  });
}
