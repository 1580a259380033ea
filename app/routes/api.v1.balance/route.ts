/** GET /api/v1/users/:userId/balance (Contract): `{"user_id","balance"}`; 0 for a user with no entries. */
import type { LoaderFunctionArgs } from "@remix-run/node";
import { z } from "zod";
import { apiFailure } from "~/lib/api-errors.server";
import { requireApiAccess } from "~/lib/auth.server";
import { getDb } from "~/lib/db.server";
import { jsonError } from "~/lib/http.server";
import { getBalance } from "~/models/ledger.server";

const userIdSchema = z.string().uuid();

export async function loader({ request, params }: LoaderFunctionArgs) {
  try {
    await requireApiAccess(request, "read", "ledger:read");
    const userId = userIdSchema.safeParse(params.userId);
    if (!userId.success) return jsonError(400, "user_id must be a UUID", { errors: { user_id: "must be a UUID" } });
    return Response.json({ user_id: userId.data, balance: await getBalance(getDb(), userId.data) });
  } catch (error) {
    return apiFailure(error);
  }
}
