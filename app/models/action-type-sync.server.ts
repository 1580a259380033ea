/**
 * Keeps the database in agreement with the action-type registry, and says where it is not.
 * Migrations are frozen in time and never import the registry; this module is what
 * `cli migrate` runs after them, so adding a type is one registry edit plus `migrate`.
 */
import { sql, type Kysely } from "kysely";
import type { Database } from "../../db/types";
import { ACTION_TYPE_NAMES, defaultOverrides, isRegisteredActionType } from "../domain/action-types";

export const CONSTRAINT_NAME = "token_usage_action_type_check";

export interface DriftItem {
  kind:
    | "constraint_missing"
    | "constraint_lacks_type"
    | "constraint_allows_unregistered"
    | "override_missing"
    | "override_unregistered"
    | "rows_unregistered";
  actionType: string | null;
  count?: number;
  message: string;
}

export interface DriftReport {
  ok: boolean;
  items: DriftItem[];
  checkedAt: string;
}

/** The action types the live CHECK constraint allows, or null when there is none. */
export async function readConstraintTypes(db: Kysely<Database>): Promise<string[] | null> {
  const result = await sql<{ def: string }>`
    SELECT pg_get_constraintdef(c.oid) AS def
    FROM pg_constraint c
    WHERE c.conname = ${CONSTRAINT_NAME} AND c.conrelid = 'public.token_usage'::regclass`.execute(db);
  const def = result.rows[0]?.def;
  if (def === undefined) return null;
  return [...def.matchAll(/'((?:[^']|'')*)'/g)].map((m) => (m[1] ?? "").replaceAll("''", "'"));
}

function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

export function constraintSql(types: readonly string[]): string {
  const list = [...types].sort().map((t) => `${quoteLiteral(t)}::text`).join(", ");
  return `CHECK (action_type = ANY (ARRAY[${list}]))`;
}

export interface ConstraintSyncResult {
  changed: boolean;
  added: string[];
  keptUnregistered: string[];
  validated: boolean;
}

/**
 * Makes the constraint allow every registered type. It only ever widens: types that an
 * adopted database already allows stay allowed (the served app may still write them) and
 * are reported as drift instead. `extraTypes` widens it on purpose (the demo's legacy type).
 * The new constraint is added NOT VALID and then validated, so existing rows are never
 * rewritten and a table holding rows of unknown types still migrates.
 */
export async function syncActionTypeConstraint(
  db: Kysely<Database>,
  options: { extraTypes?: readonly string[] } = {},
): Promise<ConstraintSyncResult> {
  return db.transaction().execute(async (trx) => {
    await sql`LOCK TABLE public.token_usage IN SHARE ROW EXCLUSIVE MODE`.execute(trx);
    const current = await readConstraintTypes(trx);
    const currentSet = new Set(current ?? []);
    const keptUnregistered = [...currentSet].filter((t) => !isRegisteredActionType(t));
    const wanted = new Set<string>([...ACTION_TYPE_NAMES, ...currentSet, ...(options.extraTypes ?? [])]);
    const added = [...wanted].filter((t) => !currentSet.has(t));
    if (current !== null && added.length === 0) {
      return { changed: false, added, keptUnregistered, validated: true };
    }
    await sql.raw(`ALTER TABLE public.token_usage DROP CONSTRAINT IF EXISTS ${CONSTRAINT_NAME}`).execute(trx);
    await sql.raw(`ALTER TABLE public.token_usage ADD CONSTRAINT ${CONSTRAINT_NAME} ${constraintSql([...wanted])} NOT VALID`).execute(trx);
    let validated = true;
    try {
      await sql`SAVEPOINT validate_action_types`.execute(trx);
      await sql.raw(`ALTER TABLE public.token_usage VALIDATE CONSTRAINT ${CONSTRAINT_NAME}`).execute(trx);
      await sql`RELEASE SAVEPOINT validate_action_types`.execute(trx);
    } catch {
      // Rows of types the constraint does not allow exist; the drift check names them.
      await sql`ROLLBACK TO SAVEPOINT validate_action_types`.execute(trx);
      validated = false;
    }
    return { changed: true, added, keptUnregistered, validated };
  });
}

/** Inserts the registry's default overrides where no row exists yet; never changes an admin's value. */
export async function seedDefaultOverrides(db: Kysely<Database>): Promise<string[]> {
  const inserted: string[] = [];
  for (const { actionType, tokenValue } of defaultOverrides()) {
    await db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto("ai_action_token_overrides")
        .values({ action_type: actionType, token_value: tokenValue })
        .onConflict((oc) => oc.column("action_type").doNothing())
        .returning("action_type")
        .executeTakeFirst();
      if (!row) return;
      inserted.push(actionType);
      await trx
        .insertInto("override_history")
        .values({
          action_type: actionType,
          old_value: null,
          new_value: tokenValue,
          changed_by: null,
          changed_by_label: "system",
          reason: "registry default",
        })
        .execute();
    });
  }
  return inserted;
}

/** Counts rows per action type outside the registry (uses idx_token_usage_action_type). */
async function unregisteredRowCounts(db: Kysely<Database>): Promise<{ action_type: string; count: number }[]> {
  return db
    .selectFrom("token_usage")
    .select(["action_type", (eb) => eb.fn.countAll<number>().as("count")])
    .where("action_type", "not in", [...ACTION_TYPE_NAMES])
    .groupBy("action_type")
    .orderBy("action_type")
    .execute();
}

export async function checkActionTypeDrift(db: Kysely<Database>): Promise<DriftReport> {
  const items: DriftItem[] = [];
  const constraintTypes = await readConstraintTypes(db);
  if (constraintTypes === null) {
    items.push({ kind: "constraint_missing", actionType: null, message: `constraint ${CONSTRAINT_NAME} is missing` });
  } else {
    const allowed = new Set(constraintTypes);
    for (const name of ACTION_TYPE_NAMES) {
      if (!allowed.has(name)) items.push({ kind: "constraint_lacks_type", actionType: name, message: `constraint lacks ${name}` });
    }
    for (const name of [...allowed].sort()) {
      if (!isRegisteredActionType(name)) {
        items.push({ kind: "constraint_allows_unregistered", actionType: name, message: `constraint allows unregistered type ${name}` });
      }
    }
  }

  const overrides = await db.selectFrom("ai_action_token_overrides").select(["action_type", "token_value"]).execute();
  const overrideTypes = new Set(overrides.map((o) => o.action_type));
  for (const { actionType, tokenValue } of defaultOverrides()) {
    if (!overrideTypes.has(actionType)) {
      items.push({
        kind: "override_missing",
        actionType,
        message: `override missing for ${actionType} (registry default ${tokenValue})`,
      });
    }
  }
  for (const o of overrides) {
    if (!isRegisteredActionType(o.action_type)) {
      items.push({ kind: "override_unregistered", actionType: o.action_type, message: `override for unregistered type ${o.action_type}` });
    }
  }

  for (const row of await unregisteredRowCounts(db)) {
    items.push({
      kind: "rows_unregistered",
      actionType: row.action_type,
      count: row.count,
      message: `rows with unregistered type ${row.action_type}: ${row.count.toLocaleString("en-US")}`,
    });
  }
  return { ok: items.length === 0, items, checkedAt: new Date().toISOString() };
}
