/**
 * Bulk load of usage events from CSV: the file is parsed as a stream, each line validated with
 * the ingest API's schema, valid lines COPYed into a temporary staging table, then moved into
 * token_usage with the same INSERT … ON CONFLICT (event_id) DO NOTHING as the API. All of it is
 * one transaction: a crash, a broken file or --strict with a rejected line stores nothing.
 */
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parse, type Info } from "csv-parse";
import { Kysely, PostgresDialect, sql, type PostgresPool } from "kysely";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import type { Database } from "../../db/types";
import { checkCsvHeader, csvRecordToEventInput, describeProblem, validateUsageEvent, type UsageEvent, type UsageEventField } from "../domain/usage-event";
import { recordAudit, type Actor } from "./audit.server";
import { insertUsageFrom, newRowId, USAGE_COLUMNS, usageColumnDefinitions } from "./usage-ingest.server";

const STAGING = "usage_import_staging";
export const MAX_LISTED_REJECTIONS = 20;
const PROGRESS_EVERY_LINES = 100_000;

/** The file cannot be imported at all (bad header, broken CSV); nothing was stored. */
export class UsageImportError extends Error {
  constructor(readonly messages: string[]) {
    super(messages.join("\n"));
  }
}

export interface ImportProgress {
  lines: number;
  valid: number;
  rejected: number;
  elapsedMs: number;
}

export interface ImportOptions {
  actor: Actor;
  /** Shown in the audit row, e.g. the file name. */
  source: string;
  /** Validate and count against the database, then roll back. */
  dryRun?: boolean;
  /** Any rejected line refuses the whole file. */
  strict?: boolean;
  onProgress?: (progress: ImportProgress) => void;
}

export interface ImportReport {
  /** Data lines read (the header is not counted). */
  lines: number;
  /** Rows inserted; for --dry-run, rows a real run would insert (then rolled back). */
  loaded: number;
  duplicates: number;
  rejected: number;
  /** The first MAX_LISTED_REJECTIONS rejected lines, each "line N: field: message". */
  rejections: string[];
  /** Whether the valid lines are now in token_usage (false for --dry-run and refused --strict files). */
  committed: boolean;
  elapsedMs: number;
}

/** COPY text format: tab-separated, \N for NULL, backslash escapes. */
function copyCell(value: unknown): string {
  if (value === null || value === undefined) return "\\N";
  const text = typeof value === "object" ? JSON.stringify(value) : typeof value === "boolean" ? (value ? "t" : "f") : String(value);
  return text.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n").replace(/\r/g, "\\r");
}

function copyLine(line: number, event: UsageEvent): string {
  return `${line}\t${newRowId()}\t${USAGE_COLUMNS.map((column) => copyCell(event[column])).join("\t")}\n`;
}

interface LineCounts {
  lines: number;
  valid: number;
  rejected: number;
  rejections: string[];
}

type LineCheck = { ok: true; event: UsageEvent } | { ok: false; message: string };

function checkLine(columns: UsageEventField[], record: string[]): LineCheck {
  if (record.length !== columns.length) return { ok: false, message: `has ${record.length} fields, the header has ${columns.length}` };
  const result = validateUsageEvent(csvRecordToEventInput(Object.fromEntries(columns.map((column, i) => [column, record[i] ?? ""]))));
  if (result.ok) return result;
  // Same wording as the API's "events[3].tokens_used: …", without the events[3] prefix.
  return { ok: false, message: result.problems.map((p) => describeProblem("", p).replace(/^\.|^: /, "")).join("; ") };
}

/** CSV records in, COPY lines of the valid ones out; rejected lines are counted and described. */
function validatingTransform(counts: LineCounts, started: number, onProgress?: (p: ImportProgress) => void): Transform {
  let columns: UsageEventField[] | null = null;
  // COPY data goes out in ~64 KiB chunks: one socket write per row would dominate the import.
  let pending = "";
  return new Transform({
    writableObjectMode: true,
    transform(chunk: { record: string[]; info: Info }, _encoding, done) {
      const { record, info } = chunk;
      if (columns === null) {
        const header = checkCsvHeader(record);
        if (!header.ok) return done(new UsageImportError(header.messages.map((m) => `line ${info.lines} (header): ${m}`)));
        columns = header.columns;
        return done();
      }
      counts.lines += 1;
      if (onProgress && counts.lines % PROGRESS_EVERY_LINES === 0) {
        onProgress({ lines: counts.lines, valid: counts.valid, rejected: counts.rejected, elapsedMs: Date.now() - started });
      }
      const line = checkLine(columns, record);
      if (line.ok) {
        counts.valid += 1;
        pending += copyLine(info.lines, line.event);
        if (pending.length < 65_536) return done();
        const chunk = pending;
        pending = "";
        return done(null, chunk);
      }
      counts.rejected += 1;
      if (counts.rejections.length < MAX_LISTED_REJECTIONS) counts.rejections.push(`line ${info.lines}: ${line.message}`);
      done();
    },
    flush(done) {
      if (columns === null) return done(new UsageImportError(["the file is empty: the first line must be a header naming token_usage columns"]));
      done(null, pending || undefined);
    },
  });
}

/** Kysely on one checked-out connection, so audit and insert share the COPY's transaction. */
function kyselyOn(client: pg.PoolClient): Kysely<Database> {
  // Releasing stays with importUsageCsv, which owns the connection.
  const borrowed = { query: client.query.bind(client), release: () => undefined };
  const pool = { connect: async () => borrowed, end: async () => undefined, options: {} } as unknown as PostgresPool;
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

function csvProblem(error: unknown): UsageImportError | null {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== "string" || !code.startsWith("CSV_")) return null;
  const line = (error as { lines?: number }).lines;
  return new UsageImportError([`line ${line ?? "?"}: the file is not valid CSV: ${(error as Error).message}`]);
}

/**
 * Imports a CSV stream into token_usage. Throws UsageImportError when the file as a whole is
 * unusable; database errors propagate. Either way nothing is stored.
 */
export async function importUsageCsv(pool: pg.Pool, input: Readable, options: ImportOptions): Promise<ImportReport> {
  const started = Date.now();
  const counts: LineCounts = { lines: 0, valid: 0, rejected: 0, rejections: [] };
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query("BEGIN");
    await client.query(`CREATE TEMP TABLE ${STAGING} (line integer NOT NULL, id uuid NOT NULL, ${usageColumnDefinitions}) ON COMMIT DROP`);
    const copy = client.query(copyFrom(`COPY ${STAGING} (line, id, ${USAGE_COLUMNS.join(", ")}) FROM STDIN`));
    try {
      await pipeline(input, parse({ bom: true, info: true, relax_column_count: true, skip_empty_lines: true }), validatingTransform(counts, started, options.onProgress), copy);
    } catch (error) {
      throw csvProblem(error) ?? error;
    }
    const refused = options.strict === true && counts.rejected > 0;
    let loaded = 0;
    if (!refused) {
      const db = kyselyOn(client);
      const { rows } = await insertUsageFrom(sql`(SELECT * FROM ${sql.raw(STAGING)} ORDER BY line) AS src`).execute(db);
      loaded = rows[0]?.accepted ?? 0;
      await recordAudit(db, options.actor, {
        action: "usage.import",
        targetType: "token_usage",
        targetId: options.source,
        after: { lines: counts.lines, loaded, duplicates: counts.valid - loaded, rejected: counts.rejected },
      });
    }
    const committed = !refused && options.dryRun !== true;
    await client.query(committed ? "COMMIT" : "ROLLBACK");
    return {
      lines: counts.lines,
      loaded,
      duplicates: refused ? 0 : counts.valid - loaded,
      rejected: counts.rejected,
      rejections: counts.rejections,
      committed,
      elapsedMs: Date.now() - started,
    };
  } catch (error) {
    await client.query("ROLLBACK").catch((rollbackError: Error) => {
      broken = rollbackError;
    });
    throw error;
  } finally {
    // A connection whose rollback failed is closed rather than reused.
    client.release(broken);
  }
}
