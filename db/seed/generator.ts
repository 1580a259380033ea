/**
 * Loads the deterministic demo data set: users, priced models, usage rows (normal traffic and
 * planted outlier cases), the seed-shaped billing history (token_transactions, households; the
 * caller adopts it into the ledger: adoptBillingOnce), and the record of what was planted. The same code
 * makes the 300k-row demo of `npm start` and the 10M-row bench data set.
 *
 * Everything goes in one transaction (a failed load leaves nothing behind), usage rows by
 * COPY in bounded statements so that statement-level triggers (the rollup queue) see
 * bounded transition tables and memory stays constant.
 */
import { sql, type Kysely } from "kysely";
import type pg from "pg";
import { z } from "zod";
import { createDb } from "../database";
import type { Database } from "../types";
import { syncActionTypeConstraint } from "../../app/models/action-type-sync.server";
import { copyLine, copyLines } from "./copy";
import { UsageTally, billingHistory } from "./billing-history";
import { DEMO_PRICING, type ModelPrice } from "./profile";
import { UNREGISTERED_TYPE, makePlan, normalRows, plantedRows, type UsageRow } from "./usage-rows";

export interface DemoDataOptions {
  users: number;
  rows: number;
  days: number;
  seed: number;
  now: Date;
  onProgress?: (done: number, total: number) => void;
  /**
   * Drop token_usage's secondary indexes for the load and build them afterwards. Only ever
   * done when the table is empty at the start; "auto" does it from 100k rows on (measured:
   * see docs/demo-data.md).
   */
  dropIndexes?: boolean | "auto";
  /** Lines about the phases of a big load (index rebuild, rollups). */
  log?: (line: string) => void;
}

export interface DemoDataResult {
  rows: number;
  users: number;
  ms: number;
}

export const PLANTED_SETTING = "demo_planted";
const ROWS_PER_COPY = 200_000;
const DROP_INDEXES_FROM_ROWS = 100_000;

const optionsSchema = z.object({
  users: z.number().int().min(2, "users must be at least 2").max(10_000_000),
  rows: z.number().int().min(0, "rows must be 0 or more").max(1_000_000_000),
  days: z.number().int().min(14, "days must be at least 14 (planted cases need a two-week baseline)").max(3_650),
  seed: z.number().int().min(0).max(2 ** 32 - 1, "seed must fit in 32 bits"),
  now: z.date().refine((d) => !Number.isNaN(d.getTime()), "now must be a valid date"),
});

const USAGE_COLUMNS = "id, user_id, action_type, model_used, tokens_used, input_tokens, output_tokens, success, error_message, created_at, calculated_cost_cents, audio_seconds, route, event_id";

function usageLine(r: UsageRow): string {
  return copyLine([r.id, r.user_id, r.action_type, r.model_used, r.tokens_used, r.input_tokens, r.output_tokens, r.success,
    r.error_message, new Date(r.created_at).toISOString(), r.calculated_cost_cents, r.audio_seconds, r.route, r.event_id]);
}

/** Demo models' prices: inserted where missing; an adopted database's own prices win. */
async function ensurePricing(db: Kysely<Database>): Promise<ModelPrice[]> {
  await db
    .insertInto("ai_model_pricing")
    .values(DEMO_PRICING.map((p) => ({ ...p, notes: "tokenboard demo price" })))
    .onConflict((oc) => oc.column("model_name").doNothing())
    .execute();
  const rows = await db
    .selectFrom("ai_model_pricing")
    .select(["model_name", "model_family", "input_price_per_1m", "output_price_per_1m", "price_per_unit", "unit_type"])
    .where("model_name", "in", DEMO_PRICING.map((p) => p.model_name))
    .execute();
  return rows.map((r) => ({ ...r, model_family: r.model_family ?? "", price_per_unit: r.price_per_unit === null ? null : Number(r.price_per_unit) }));
}

/** Secondary indexes of token_usage (not the ones behind constraints), with their definitions. */
async function secondaryIndexes(client: pg.PoolClient): Promise<{ name: string; definition: string }[]> {
  const result = await client.query<{ name: string; definition: string }>(`
    SELECT i.relname AS name, pg_get_indexdef(i.oid) AS definition
    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
    WHERE x.indrelid = 'public.token_usage'::regclass
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)`);
  return result.rows;
}

/** Yields from `source` at most `limit` items, leaving the rest for the next call. */
function* take<T>(source: Iterator<T>, limit: number, onItem: () => void): Generator<T> {
  for (let i = 0; i < limit; i++) {
    const next = source.next();
    if (next.done) return;
    onItem();
    yield next.value;
  }
}

export async function generateDemoData(databaseUrl: string, options: DemoDataOptions): Promise<DemoDataResult> {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
  const started = Date.now();
  const log = options.log ?? (() => undefined);
  const { db, pool } = createDb(databaseUrl, 2);
  try {
    // The legacy type of the seed app must be insertable, as in an adopted database.
    await syncActionTypeConstraint(db, { extraTypes: [UNREGISTERED_TYPE] });
    const pricing = await ensurePricing(db);
    const plan = makePlan(parsed.data, pricing);
    const planted = plantedRows(plan);
    const rebuildRollups = await rollupRebuilder();
    const normalCount = Math.max(0, options.rows - planted.rows.length);
    const total = normalCount + planted.rows.length;
    let done = 0;
    const progress = () => {
      done++;
      if (done % 25_000 === 0) options.onProgress?.(done, total);
    };

    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      const empty = (await client.query("SELECT NOT EXISTS (SELECT 1 FROM public.token_usage) AS empty")).rows[0].empty as boolean;
      const dropIndexes = empty && (options.dropIndexes === "auto" || options.dropIndexes === undefined ? total >= DROP_INDEXES_FROM_ROWS : options.dropIndexes);
      const dropped = dropIndexes ? await secondaryIndexes(client) : [];
      for (const index of dropped) await client.query(`DROP INDEX public.${quoteIdent(index.name)}`);
      // The rollup queue trigger would copy every row once more; the rebuild after the load
      // reads the table instead. Only for a bulk load into an empty table, inside this transaction.
      const skipTriggers = dropIndexes && rebuildRollups !== null;
      if (skipTriggers) await client.query("ALTER TABLE public.token_usage DISABLE TRIGGER USER");

      await copyLines(client, "COPY tokenboard.app_users (user_id, email, display_name) FROM STDIN",
        plan.users.map((u) => copyLine([u.user_id, u.email, u.display_name])));

      const copyStarted = Date.now();
      const tally = new UsageTally();
      const tallied = (row: UsageRow) => {
        tally.add(row);
        return usageLine(row);
      };
      const rows = normalRows(plan, normalCount);
      // Bounded COPY statements until the generator is exhausted (a statement that adds nothing ends it).
      for (let before = -1; done < normalCount && done !== before; ) {
        before = done;
        await copyLines(client, `COPY public.token_usage (${USAGE_COLUMNS}) FROM STDIN`, mapLines(take(rows, ROWS_PER_COPY, progress), tallied));
      }
      await copyLines(client, `COPY public.token_usage (${USAGE_COLUMNS}) FROM STDIN`, mapLines(take(planted.rows.values(), planted.rows.length, progress), tallied));
      options.onProgress?.(done, total);
      log(`usage rows copied in ${((Date.now() - copyStarted) / 1000).toFixed(1)} s${dropped.length ? ` (${dropped.length} secondary indexes dropped for the load)` : ""}`);

      await loadBilling(client, plan.shape.seed, plan.users, { start: plan.days[0]?.start ?? 0, end: plan.shape.now.getTime() }, tally);

      if (skipTriggers) await client.query("ALTER TABLE public.token_usage ENABLE TRIGGER USER");
      for (const index of dropped) {
        const indexStarted = Date.now();
        await client.query(index.definition);
        log(`rebuilt index ${index.name} in ${((Date.now() - indexStarted) / 1000).toFixed(1)} s`);
      }
      await client.query(
        `INSERT INTO tokenboard.settings (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()`,
        [PLANTED_SETTING, JSON.stringify(planted.cases)],
      );
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
    // Fresh statistics, and a visibility map so that index-only scans work from the start.
    const vacuumStarted = Date.now();
    await sql`VACUUM (ANALYZE) public.token_usage`.execute(db);
    log(`vacuum analyze in ${((Date.now() - vacuumStarted) / 1000).toFixed(1)} s`);
    if (rebuildRollups) {
      const built = await rebuildRollups(db);
      log(`rollups rebuilt from ${built.rows.toLocaleString("en-US")} rows in ${(built.ms / 1000).toFixed(1)} s`);
    }
    return { rows: total, users: plan.users.length, ms: Date.now() - started };
  } finally {
    await db.destroy();
  }
}

function* mapLines<T>(items: Iterable<T>, toLine: (item: T) => string): Generator<string> {
  for (const item of items) yield toLine(item);
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The seed-shaped billing history; skipped when this seed's history is already there (a re-seed). */
async function loadBilling(client: pg.PoolClient, seed: number, users: Parameters<typeof billingHistory>[1], window: { start: number; end: number }, tally: UsageTally): Promise<void> {
  const billing = billingHistory(seed, users, window, tally);
  const first = billing.transactions[0];
  if (!first) return;
  const existing = await client.query("SELECT 1 FROM public.token_transactions WHERE id = $1", [first.id]);
  if (existing.rowCount) return;
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  await copyLines(client,
    "COPY public.token_transactions (id, user_id, action_type, tokens_used, tokens_remaining, created_at, expires_at, amount_paid_cents, currency, notes, created_by) FROM STDIN",
    billing.transactions.map((t) => copyLine([t.id, t.user_id, t.action_type, t.tokens_used, 0, iso(t.created_at), iso(t.expires_at), t.amount_paid_cents, t.currency, t.notes, t.created_by])));
  await copyLines(client, "COPY public.households (id, name, admin_user_id, subscription_status, plan_type, shared_tokens_enabled, created_at) FROM STDIN",
    billing.households.map((h) => copyLine([h.id, h.name, h.admin_user_id, "active", "household", true, iso(h.created_at)])));
  await copyLines(client, "COPY public.household_members (id, household_id, user_id, role, allow_shared_tokens, status, joined_at, accepted_at, removed_at) FROM STDIN",
    billing.members.map((m) => copyLine([m.id, m.household_id, m.user_id, m.role, m.allow_shared_tokens, m.status, iso(m.joined_at), m.status === "pending" ? null : iso(m.joined_at), iso(m.removed_at)])));
}

/**
 * The rollups' full rebuild (app/models/rollup.server.ts), when that module exists: one pass
 * over the table after the load instead of replaying a queue row by row.
 */
async function rollupRebuilder(): Promise<((db: Kysely<Database>) => Promise<{ rows: number; ms: number }>) | null> {
  const rollups = await import("../../app/models/rollup.server").catch(() => null);
  return rollups && typeof rollups.rebuildRollups === "function" ? rollups.rebuildRollups : null;
}
