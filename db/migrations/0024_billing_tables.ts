import { sql, type Kysely } from "kysely";

/**
 * Billing: the seed app's billing tables (shared/reference/seed-billing-schema.sql) where they
 * are missing, so pools and adoption read one shape everywhere; and the ledger columns that
 * billing needs: the money of a purchase, the source row an adopted entry came from, and who
 * consumed a charge that a shared pool paid.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    DO $$ BEGIN
      CREATE TYPE public.token_action_type AS ENUM (
        'chat', 'refinement', 'blueprint', 'audio_generation', 'transcription', 'image_generation',
        'assessment', 'manual_adjustment', 'subscription_grant', 'renewal_grant', 'pack_purchase',
        'admin_grant', 'admin_deduct', 'trial_grant', 'token_pack_purchase');
    EXCEPTION WHEN duplicate_object THEN NULL; END $$`.execute(db);
  await sql`
    CREATE TABLE IF NOT EXISTS public.token_transactions (
      id uuid DEFAULT gen_random_uuid() NOT NULL PRIMARY KEY,
      user_id uuid NOT NULL,
      action_type public.token_action_type NOT NULL,
      tokens_used integer NOT NULL,
      tokens_remaining integer NOT NULL,
      estimated_cost_usd numeric(10,6),
      openai_model text,
      prompt_tokens integer,
      completion_tokens integer,
      metadata jsonb DEFAULT '{}'::jsonb,
      created_at timestamp with time zone DEFAULT now(),
      amount_paid_cents integer,
      currency text DEFAULT 'USD'::text,
      stripe_payment_intent_id text,
      stripe_session_id text,
      subscription_id uuid,
      token_pack_id text,
      notes text,
      created_by uuid,
      expires_at timestamp with time zone
    )`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS idx_token_transactions_action_type ON public.token_transactions USING btree (action_type)`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS idx_token_transactions_created_at ON public.token_transactions USING btree (created_at DESC)`.execute(db);
  await sql`
    CREATE TABLE IF NOT EXISTS public.households (
      id uuid DEFAULT gen_random_uuid() NOT NULL PRIMARY KEY,
      name text DEFAULT 'My Household'::text NOT NULL,
      admin_user_id uuid NOT NULL,
      stripe_customer_id text,
      stripe_subscription_id text,
      subscription_status text DEFAULT 'active'::text
        CHECK (subscription_status = ANY (ARRAY['active','canceled','past_due','trialing','incomplete'])),
      plan_type text DEFAULT 'household'::text CHECK (plan_type = ANY (ARRAY['solo','household'])),
      max_members integer DEFAULT 6,
      shared_tokens_enabled boolean DEFAULT true,
      created_at timestamp with time zone DEFAULT now(),
      updated_at timestamp with time zone DEFAULT now()
    )`.execute(db);
  await sql`
    CREATE TABLE IF NOT EXISTS public.household_members (
      id uuid DEFAULT gen_random_uuid() NOT NULL PRIMARY KEY,
      household_id uuid NOT NULL,
      user_id uuid NOT NULL,
      role text DEFAULT 'member'::text CHECK (role = ANY (ARRAY['admin','member'])),
      allow_shared_tokens boolean DEFAULT true,
      invited_by uuid,
      invited_at timestamp with time zone DEFAULT now(),
      accepted_at timestamp with time zone,
      status text DEFAULT 'active'::text CHECK (status = ANY (ARRAY['pending','active','removed'])),
      joined_at timestamp with time zone DEFAULT now(),
      removed_at timestamp with time zone,
      is_addon_seat boolean DEFAULT false,
      seat_number integer,
      stripe_subscription_item_id text
    )`.execute(db);
  // Pool lookups resolve a member to its household; not unique: the seed allows history rows.
  await sql`CREATE INDEX IF NOT EXISTS household_members_user_idx ON public.household_members (user_id)`.execute(db);

  await sql`
    ALTER TABLE tokenboard.ledger_entries
      ADD COLUMN amount_paid_cents integer,
      ADD COLUMN currency text,
      ADD COLUMN source_ref text,
      ADD COLUMN consumer_id uuid`.execute(db);
  // An adopted row becomes one entry, once: 'token_transactions:<id>'.
  await sql`CREATE UNIQUE INDEX ledger_entries_source_ref_idx ON tokenboard.ledger_entries (source_ref) WHERE source_ref IS NOT NULL`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS tokenboard.ledger_entries_source_ref_idx`.execute(db);
  await sql`ALTER TABLE tokenboard.ledger_entries DROP COLUMN amount_paid_cents, DROP COLUMN currency, DROP COLUMN source_ref, DROP COLUMN consumer_id`.execute(db);
  // The seed app's tables stay: tokenboard may have adopted them.
}
