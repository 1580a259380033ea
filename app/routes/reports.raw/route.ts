import type { LoaderFunctionArgs } from "@remix-run/node";
import { requireStaff } from "~/lib/auth.server";

export async function loader({ request }: LoaderFunctionArgs) {
  await requireStaff(request, "reports:read");
  return new Response("not built yet", { status: 501 });
}
