/** API key scopes and rotation choices: shared by the keys page and app/models/api-keys.server.ts. */
import { z } from "zod";
import type { ApiKeyScope } from "../../db/types";
import { STORABLE_TEXT, UNSTORABLE_MESSAGE } from "./storable-text";

export const API_KEY_SCOPES: readonly ApiKeyScope[] = ["ingest", "ledger", "read"];

/** What each scope opens, for the page. */
export const SCOPE_DESCRIPTIONS: Record<ApiKeyScope, string> = {
  ingest: "POST /api/v1/usage",
  ledger: "POST /api/v1/ledger and balance reads",
  read: "GET /api/v1/users/:id/balance",
};

/** Overlap windows a rotation offers: how long the old key keeps working. */
export const ROTATION_OVERLAPS = { "1h": 3_600, "24h": 86_400, "7d": 604_800 } as const;

export type ApiKeyStatus = "active" | "expiring" | "expired" | "revoked";

export const scopeSchema = z.enum(API_KEY_SCOPES as [ApiKeyScope, ...ApiKeyScope[]], { errorMap: () => ({ message: `must be one of ${API_KEY_SCOPES.join(", ")}` }) });

export const newApiKeySchema = z.object({
  name: z.string().trim().min(1, "is required").max(100, "must be at most 100 characters").regex(STORABLE_TEXT, UNSTORABLE_MESSAGE),
  scope: scopeSchema,
});
