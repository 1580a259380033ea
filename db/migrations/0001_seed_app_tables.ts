import { sql, type Kysely } from "kysely";

/**
 * The seed app's own tables, in its production shape (shared/reference/seed-app-schema.sql).
 * On an adopted database they already exist: every statement here is "if not exists",
 * so nothing is rewritten and no row is touched. The action-type CHECK constraint is not
 * created here: it is derived from the registry and applied by `cli migrate` after the
 * migrations (see app/models/action-type-sync.server.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE EXTENSION IF NOT EXISTS pgcrypto`.execute(db).catch(() => undefined);

  await sql`
    CREATE TABLE IF NOT EXISTS public.token_usage (
      id uuid DEFAULT gen_random_uuid() NOT NULL PRIMARY KEY,
      user_id uuid NOT NULL,
      action_type text NOT NULL,
      model_used text NOT NULL,
      tokens_used integer DEFAULT 0 NOT NULL,
      input_tokens integer DEFAULT 0,
      output_tokens integer DEFAULT 0,
      success boolean DEFAULT true NOT NULL,
      error_message text,
      metadata jsonb DEFAULT '{}'::jsonb,
      created_at timestamp with time zone DEFAULT now() NOT NULL,
      calculated_cost_cents numeric(12,4),
      audio_seconds numeric(10,2),
      audio_duration_formatted text,
      openai_request_id text,
      openai_created bigint,
      system_fingerprint text,
      actual_cost_cents numeric(12,4),
      reconciled_at timestamp with time zone,
      reconciliation_status text DEFAULT 'pending'::text,
      CONSTRAINT token_usage_reconciliation_consistency_check CHECK ((((reconciled_at IS NULL) AND (actual_cost_cents IS NULL)) OR ((reconciled_at IS NOT NULL) AND (actual_cost_cents IS NOT NULL)))),
      CONSTRAINT token_usage_reconciliation_status_check CHECK ((reconciliation_status = ANY (ARRAY['pending'::text, 'matched'::text, 'discrepancy'::text, 'not_applicable'::text])))
    )`.execute(db);

  await sql`
    CREATE TABLE IF NOT EXISTS public.ai_action_token_overrides (
      action_type text NOT NULL PRIMARY KEY,
      token_value integer NOT NULL CONSTRAINT ai_action_token_overrides_token_value_check CHECK (token_value >= 0),
      updated_at timestamp with time zone DEFAULT now()
    )`.execute(db);

  await sql`
    CREATE TABLE IF NOT EXISTS public.ai_model_pricing (
      id uuid DEFAULT gen_random_uuid() NOT NULL PRIMARY KEY,
      model_name text NOT NULL CONSTRAINT ai_model_pricing_model_name_key UNIQUE,
      provider text DEFAULT 'openai'::text NOT NULL,
      model_family text,
      input_price_per_1m numeric(10,2) NOT NULL,
      output_price_per_1m numeric(10,2) NOT NULL,
      price_per_unit numeric(10,6),
      unit_type text,
      is_active boolean DEFAULT true,
      effective_date timestamp with time zone DEFAULT now(),
      notes text,
      created_at timestamp with time zone DEFAULT now(),
      updated_at timestamp with time zone DEFAULT now(),
      supports_temperature boolean DEFAULT true,
      supports_json_mode boolean DEFAULT true,
      supports_streaming boolean DEFAULT true,
      is_reasoning_model boolean DEFAULT false,
      max_tokens_param text DEFAULT 'max_tokens'::text,
      token_multiplier integer DEFAULT 1,
      context_window integer,
      capabilities_notes text
    )`.execute(db);

  // The seed app's own indexes (kept if present).
  await sql`CREATE INDEX IF NOT EXISTS idx_token_usage_action_type ON public.token_usage USING btree (action_type)`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS idx_token_usage_created_at ON public.token_usage USING btree (created_at DESC)`.execute(db);
}

export async function down(_db: Kysely<unknown>): Promise<void> {
  // The seed app owns these tables: rolling tokenboard back never drops them.
}
