import type { LoaderFunctionArgs } from "@remix-run/node";
import { requireStaff } from "~/lib/auth.server";
import { csvDownload } from "../reports/download.server";

/** The monthly CSV: one row per (user, action type) and a TOTAL row (docs/reports.md). */
export async function loader({ request }: LoaderFunctionArgs) {
  const staff = await requireStaff(request, "reports:read");
  return csvDownload(request, staff, "monthly");
}
