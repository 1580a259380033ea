/**
 * POST /api/v1/ledger (Contract): grant or deduct tokens with an idempotency key.
 * Bearer ledger key (the app's backend; no per-adjustment limit) or a staff session with
 * ledger:adjust (support capped per adjustment and per user per rolling 24 hours).
 */
import type { ActionFunctionArgs } from "@remix-run/node";
import { checkStaffAdjustment, ledgerRequestSchema } from "~/domain/ledger";
import { apiFailure } from "~/lib/api-errors.server";
import { requireApiAccess } from "~/lib/auth.server";
import { getDb } from "~/lib/db.server";
import { getEnv } from "~/lib/env.server";
import { jsonError, PayloadTooLargeError, readBodyText } from "~/lib/http.server";
import { parseWith } from "~/lib/validation";
import { adjustBalance } from "~/models/ledger.server";
import { supportCapFor } from "~/models/support-cap.server";

const BODY_LIMIT = 16 * 1024;

async function readJson(request: Request): Promise<{ ok: true; body: unknown } | { ok: false; response: Response }> {
  try {
    return { ok: true, body: JSON.parse(await readBodyText(request, BODY_LIMIT)) };
  } catch (error) {
    if (error instanceof PayloadTooLargeError) return { ok: false, response: jsonError(413, error.message) };
    if (error instanceof SyntaxError) return { ok: false, response: jsonError(400, "body must be a JSON object") };
    throw error;
  }
}

export async function action({ request }: ActionFunctionArgs) {
  try {
    if (request.method !== "POST") return jsonError(405, "use POST", {}, { allow: "POST" });
    const caller = await requireApiAccess(request, "ledger", "ledger:adjust");
    const read = await readJson(request);
    if (!read.ok) return read.response;
    const parsed = parseWith(ledgerRequestSchema, read.body);
    if (!parsed.ok) {
      const summary = Object.entries(parsed.errors).map(([field, message]) => `${field} ${message}`).join("; ");
      return jsonError(422, summary, { errors: parsed.errors });
    }
    const input = parsed.data;
    if (caller.kind === "staff") {
      const check = checkStaffAdjustment(caller.staff.role, input.amount, getEnv().TOKENBOARD_SUPPORT_ADJUST_LIMIT);
      if (!check.ok) return jsonError(check.status, check.message);
    }
    const outcome = await adjustBalance(getDb(), caller.actor, {
      userId: input.user_id,
      kind: input.kind,
      amount: input.amount,
      reason: input.reason,
      idempotencyKey: input.idempotency_key,
      supportCap: caller.kind === "staff" ? supportCapFor(caller.staff, getEnv().TOKENBOARD_SUPPORT_DAILY_LIMIT) : undefined,
    });
    switch (outcome.status) {
      case "cap_exceeded":
        return jsonError(403, outcome.message, { user_id: input.user_id, remaining: outcome.remaining });
      case "insufficient":
        return jsonError(409, outcome.message, { user_id: input.user_id, balance: outcome.balance });
      case "key_conflict":
        return jsonError(422, outcome.message, { errors: { idempotency_key: outcome.message } });
      default:
        return Response.json(
          { user_id: input.user_id, balance: outcome.balance, entry_id: outcome.entry.id, idempotent_replay: outcome.status === "replay" },
          { status: outcome.status === "applied" ? 201 : 200 },
        );
    }
  } catch (error) {
    return apiFailure(error);
  }
}
