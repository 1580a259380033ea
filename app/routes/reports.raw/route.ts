import type { LoaderFunctionArgs } from "@remix-run/node";
import { requireStaff } from "~/lib/auth.server";
import { csvDownload } from "../reports/download.server";

/** Every usage row of the month (docs/reports.md). */
export async function loader({ request }: LoaderFunctionArgs) {
  const staff = await requireStaff(request, "reports:read");
  return csvDownload(request, staff, "raw");
}
