/**
 * API keys managed by admins (issue 23): created with a scope, shown in full once, stored as a
 * sha256 hash with a visible prefix; revoked or rotated with an overlap. Every change is one
 * transaction with its audit row. Keys from the environment are rows too (registerApiKey).
 */
import { createHash, randomBytes } from "node:crypto";
import { sql, type Kysely } from "kysely";
import type { z } from "zod";
import type { ApiKeyScope, Database } from "../../db/types";
import type { ApiKeyStatus, newApiKeySchema } from "../domain/api-keys";
import { recordAudit, type Actor } from "./audit.server";
import { logger } from "../lib/logger.server";

const KEY_MARK = "tb_live_";
/** The mark and 6 characters of the random part: enough to tell keys apart, far too little to guess one. */
const PREFIX_LENGTH = KEY_MARK.length + 6;

export function sha256(value: string): string {
  return createHash("sha256").update(value).digest("hex");
}

/** A new key: 192 random bits, so a plain sha256 is enough to store it (no slow hash needed). */
export function generateApiKey(): { key: string; prefix: string; hash: string } {
  const key = `${KEY_MARK}${randomBytes(24).toString("base64url")}`;
  return { key, prefix: key.slice(0, PREFIX_LENGTH), hash: sha256(key) };
}

export interface ActiveApiKey {
  id: string;
  name: string;
  scope: ApiKeyScope;
  last_used_at: Date | null;
}

/** Distinct keys per lookup query: bounds one statement when many keys arrive at once. */
const MAX_LOOKUP_BATCH = 200;

interface LookupWaiter {
  resolve: (key: ActiveApiKey | undefined) => void;
  reject: (error: unknown) => void;
}

interface LookupQueue {
  running: boolean;
  waiting: Map<string, LookupWaiter[]>;
}

const lookupQueues = new WeakMap<Kysely<Database>, LookupQueue>();

/**
 * The key with this hash if it is neither revoked nor expired, by the database's clock (the same
 * for every process). Looked up for every request, and coalesced as the ledger's group commit
 * is: a lookup that arrives while none is in the database goes at once; those that arrive
 * meanwhile go together in the next query. Each query starts after every request it answers
 * arrived, so a key revoked before a request came is refused to that request.
 */
export function findActiveApiKey(db: Kysely<Database>, keyHash: string): Promise<ActiveApiKey | undefined> {
  let queue = lookupQueues.get(db);
  if (!queue) {
    queue = { running: false, waiting: new Map() };
    lookupQueues.set(db, queue);
  }
  const current = queue;
  return new Promise((resolve, reject) => {
    const waiters = current.waiting.get(keyHash);
    if (waiters) waiters.push({ resolve, reject });
    else current.waiting.set(keyHash, [{ resolve, reject }]);
    if (!current.running) void runLookups(db, current);
  });
}

async function runLookups(db: Kysely<Database>, queue: LookupQueue): Promise<void> {
  queue.running = true;
  while (queue.waiting.size > 0) {
    const batch = [...queue.waiting].slice(0, MAX_LOOKUP_BATCH);
    for (const [hash] of batch) queue.waiting.delete(hash);
    try {
      const rows = await db
        .selectFrom("api_keys")
        .select(["id", "name", "scope", "last_used_at", "key_hash"])
        .where("key_hash", "=", sql<string>`ANY(${batch.map(([hash]) => hash)}::text[])`)
        .where("revoked_at", "is", null)
        .where((eb) => eb.or([eb("expires_at", "is", null), eb("expires_at", ">", sql<Date>`now()`)]))
        .execute();
      const found = new Map(rows.map(({ key_hash, ...key }) => [key_hash, key]));
      for (const [hash, waiters] of batch) for (const w of waiters) w.resolve(found.get(hash));
    } catch (error) {
      for (const [, waiters] of batch) for (const w of waiters) w.reject(error);
    }
  }
  queue.running = false;
}

/** last_used_at is written at most once per interval and key, off the request's path. */
const LAST_USED_INTERVAL_MS = 60_000;
const lastUseWritten = new Map<string, number>();

export function noteApiKeyUse(db: Kysely<Database>, key: ActiveApiKey): void {
  const now = Date.now();
  if (key.last_used_at && now - key.last_used_at.getTime() < LAST_USED_INTERVAL_MS) return;
  const written = lastUseWritten.get(key.id);
  if (written !== undefined && now - written < LAST_USED_INTERVAL_MS) return;
  lastUseWritten.set(key.id, now);
  db.updateTable("api_keys")
    .set({ last_used_at: sql<Date>`now()` })
    .where("id", "=", key.id)
    .execute()
    .catch((error: unknown) => {
      // A missed "last used" is not worth failing the call it belongs to; the next use retries.
      lastUseWritten.delete(key.id);
      logger.warn({ err: error }, "could not record an API key's last use");
    });
}

export interface ApiKeyListing {
  id: string;
  name: string;
  scope: ApiKeyScope;
  prefix: string | null;
  fromEnvironment: boolean;
  createdAt: Date;
  createdBy: string | null;
  lastUsedAt: Date | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
  status: ApiKeyStatus;
}

function statusOf(row: { revoked_at: Date | null; expires_at: Date | null }, now: Date): ApiKeyStatus {
  if (row.revoked_at) return "revoked";
  if (!row.expires_at) return "active";
  return row.expires_at > now ? "expiring" : "expired";
}

export async function listApiKeys(db: Kysely<Database>): Promise<ApiKeyListing[]> {
  const rows = await db
    .selectFrom("api_keys as k")
    .leftJoin("staff_users as s", "s.id", "k.created_by")
    .select(["k.id", "k.name", "k.scope", "k.prefix", "k.created_at", "k.created_by", "k.last_used_at", "k.expires_at", "k.revoked_at", "s.email as creator_email", sql<Date>`now()`.as("now")])
    .orderBy("k.created_at", "desc")
    .orderBy("k.id")
    .execute();
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    scope: r.scope,
    prefix: r.prefix,
    // Keys from the environment (and tests' registerApiKey) have no creator and no prefix.
    fromEnvironment: r.prefix === null && r.created_by === null,
    createdAt: r.created_at,
    createdBy: r.creator_email,
    lastUsedAt: r.last_used_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    status: statusOf(r, r.now),
  }));
}

export interface CreatedApiKey {
  id: string;
  key: string;
  prefix: string;
  name: string;
  scope: ApiKeyScope;
}

async function insertKey(db: Kysely<Database>, actor: Actor, input: { name: string; scope: ApiKeyScope }): Promise<CreatedApiKey> {
  const { key, prefix, hash } = generateApiKey();
  const row = await db
    .insertInto("api_keys")
    .values({ name: input.name, scope: input.scope, key_hash: hash, prefix, created_by: actor.id })
    .returning("id")
    .executeTakeFirstOrThrow();
  return { id: row.id, key, prefix, name: input.name, scope: input.scope };
}

/** Creates a key; the full key is in the answer and nowhere else. */
export async function createApiKey(db: Kysely<Database>, actor: Actor, input: z.infer<typeof newApiKeySchema>): Promise<CreatedApiKey> {
  return db.transaction().execute(async (trx) => {
    const created = await insertKey(trx, actor, input);
    await recordAudit(trx, actor, { action: "api_key.create", targetType: "api_key", targetId: created.id, after: { name: created.name, scope: created.scope, prefix: created.prefix } });
    return created;
  });
}

export type ApiKeyChangeResult<T = object> = ({ ok: true } & T) | { ok: false; field: string; message: string };

const NO_SUCH_KEY = { ok: false, field: "key_id", message: "no such API key" } as const;

/** Revokes a key at once, for every process: each request looks its key up. */
export async function revokeApiKey(db: Kysely<Database>, actor: Actor, keyId: string): Promise<ApiKeyChangeResult> {
  return db.transaction().execute(async (trx) => {
    const key = await trx.selectFrom("api_keys").select(["name", "scope", "prefix", "revoked_at"]).where("id", "=", keyId).forUpdate().executeTakeFirst();
    if (!key) return NO_SUCH_KEY;
    if (key.revoked_at) return { ok: true };
    await trx.updateTable("api_keys").set({ revoked_at: sql<Date>`now()` }).where("id", "=", keyId).execute();
    await recordAudit(trx, actor, { action: "api_key.revoke", targetType: "api_key", targetId: keyId, before: { name: key.name, scope: key.scope, prefix: key.prefix } });
    return { ok: true };
  });
}

/**
 * Rotation: a new key of the same scope, and the old one expires after the overlap, so the
 * callers can move over without a gap. A key already revoked, expired or replaced is not rotated.
 */
export async function rotateApiKey(db: Kysely<Database>, actor: Actor, keyId: string, overlapSeconds: number): Promise<ApiKeyChangeResult<{ created: CreatedApiKey }>> {
  return db.transaction().execute(async (trx) => {
    const old = await trx
      .selectFrom("api_keys")
      .select(["name", "scope", "prefix", "revoked_at", "replaced_by", sql<boolean>`expires_at IS NOT NULL AND expires_at <= now()`.as("expired")])
      .where("id", "=", keyId)
      .forUpdate()
      .executeTakeFirst();
    if (!old) return NO_SUCH_KEY;
    if (old.revoked_at || old.expired) return { ok: false, field: "key_id", message: "this key no longer works: create a new one instead" };
    if (old.replaced_by) return { ok: false, field: "key_id", message: "this key was rotated already: rotate its replacement" };
    const created = await insertKey(trx, actor, { name: old.name, scope: old.scope });
    // An expiry already sooner than the overlap is kept.
    await trx
      .updateTable("api_keys")
      .set({ replaced_by: created.id, expires_at: sql<Date>`LEAST(expires_at, now() + make_interval(secs => ${overlapSeconds}))` })
      .where("id", "=", keyId)
      .execute();
    await recordAudit(trx, actor, {
      action: "api_key.rotate",
      targetType: "api_key",
      targetId: keyId,
      before: { name: old.name, scope: old.scope, prefix: old.prefix },
      after: { replaced_by: created.id, prefix: created.prefix, overlap_seconds: overlapSeconds },
    });
    return { ok: true, created };
  });
}

/**
 * A key given by the environment (or a test): stored by hash, and made valid again on every
 * start, so that the variable stays the way to regain API access.
 */
export async function registerApiKey(db: Kysely<Database>, name: string, scope: ApiKeyScope, key: string): Promise<void> {
  await db
    .insertInto("api_keys")
    .values({ name, scope, key_hash: sha256(key) })
    .onConflict((oc) => oc.column("key_hash").doUpdateSet({ name, scope, revoked_at: null, expires_at: null, replaced_by: null }))
    .execute();
}
