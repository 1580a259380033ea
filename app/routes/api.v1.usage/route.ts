import type { ActionFunctionArgs } from "@remix-run/node";
import { requireApiAccess } from "~/lib/auth.server";

export async function action({ request }: ActionFunctionArgs) {
  await requireApiAccess(request, "ingest");
  return Response.json({ error: "not built yet" }, { status: 501 });
}
