import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { sql } from "kysely";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ACTION_TYPE_NAMES } from "../../app/domain/action-types";
import { syncActionTypeConstraint } from "../../app/models/action-type-sync.server";
import { importUsageCsv, UsageImportError, type ImportOptions } from "../../app/models/usage-import.server";
import { command } from "../../scripts/commands/import-usage";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { UUID_V7 } from "../support/uuid";

let t: TestDatabase;
let dir: string;
beforeAll(async () => {
  t = await createTestDatabase();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "tb-import-"));
});
afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true });
  await t.drop();
});
afterEach(() => vi.restoreAllMocks());

const HEADER = "user_id,action_type,model_used,tokens_used,created_at,event_id,metadata,success,route";
const options: ImportOptions = { actor: { id: null, label: "test:import" }, source: "test.csv" };

function line(fields: Partial<Record<string, string>> = {}): string {
  const row = {
    user_id: randomUUID(),
    action_type: "chat_conversation",
    model_used: "gpt-4o",
    tokens_used: "3000",
    created_at: "2025-03-01T10:00:00Z",
    event_id: randomUUID(),
    metadata: "",
    success: "",
    route: "/api/viva/chat",
    ...fields,
  };
  return HEADER.split(",").map((column) => row[column as keyof typeof row] ?? "").join(",");
}

const csv = (...lines: string[]) => Readable.from([`${lines.join("\n")}\n`]);

async function countEvents(ids: string[]): Promise<number> {
  const row = await t.db
    .selectFrom("token_usage")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("event_id", "in", ids)
    .executeTakeFirstOrThrow();
  return row.n;
}

async function totalRows(): Promise<number> {
  const row = await t.db.selectFrom("token_usage").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
  return row.n;
}

function writeFile(name: string, content: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}

/** Runs the CLI command in-process against the test database, capturing what it prints. */
async function runCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, "log").mockImplementation((...parts: unknown[]) => void out.push(parts.join(" ")));
  vi.spyOn(console, "error").mockImplementation((...parts: unknown[]) => void err.push(parts.join(" ")));
  const code = await command.run(args);
  vi.restoreAllMocks();
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("import-usage", () => {
  it("loads a good file with every value as written, defaults for empty cells, and one audit row", async () => {
    const user = randomUUID();
    const id1 = randomUUID();
    const id2 = randomUUID();
    const report = await importUsageCsv(
      t.pool,
      csv(
        HEADER,
        line({ user_id: user, event_id: id1, metadata: '"{""voice"":""alloy"",""n"":[1,2]}"', success: "false", route: '"tab\tand\\back"' }),
        line({ user_id: user, event_id: id2, action_type: "image_generation", model_used: "dall-e-3", tokens_used: "25", created_at: "", route: "" }),
      ),
      { ...options, source: "good.csv" },
    );
    expect(report).toMatchObject({ lines: 2, loaded: 2, duplicates: 0, rejected: 0, rejections: [], committed: true });

    const rows = await t.db.selectFrom("token_usage").selectAll().where("user_id", "=", user).orderBy("tokens_used", "desc").execute();
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ event_id: id1, tokens_used: 3000, success: false, metadata: { voice: "alloy", n: [1, 2] }, route: "tab\tand\\back", input_tokens: 0 });
    expect(rows[0]!.created_at.toISOString()).toBe("2025-03-01T10:00:00.000Z");
    expect(rows[1]).toMatchObject({ event_id: id2, action_type: "image_generation", success: true, metadata: {}, route: null, reconciliation_status: "pending" });
    expect(Math.abs(rows[1]!.created_at.getTime() - Date.now())).toBeLessThan(60_000);

    const audit = await t.db.selectFrom("audit_log").selectAll().where("action", "=", "usage.import").where("target_id", "=", "good.csv").execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor_label: "test:import", after: { lines: 2, loaded: 2, duplicates: 0, rejected: 0 } });
  });

  it("names rejected lines by line number and field, stores none of them, and loads the rest", async () => {
    const good = [randomUUID(), randomUUID()];
    const bad = [randomUUID(), randomUUID(), randomUUID()];
    const report = await importUsageCsv(
      t.pool,
      csv(
        HEADER,
        line({ event_id: good[0] }),
        line({ event_id: bad[0], tokens_used: "-3" }),
        line({ event_id: bad[1], action_type: "vibrational_analysis" }),
        line({ event_id: good[1] }),
        line({ event_id: bad[2], tokens_used: "lots", success: "maybe" }),
        "only,three,fields",
      ),
      options,
    );
    expect(report).toMatchObject({ lines: 6, loaded: 2, rejected: 4, committed: true });
    expect(report.rejections).toEqual([
      "line 3: tokens_used: must be an integer ≥ 0",
      expect.stringMatching(/^line 4: action_type: unknown action type "vibrational_analysis"; allowed: assessment_scoring, /),
      "line 6: tokens_used: must be an integer ≥ 0; success: must be true or false",
      "line 7: has 3 fields, the header has 9",
    ]);
    expect(await countEvents(good)).toBe(2);
    expect(await countEvents(bad)).toBe(0);
  });

  it("lists the first 20 rejected lines and counts all of them", async () => {
    const lines = Array.from({ length: 25 }, () => line({ tokens_used: "1.5" }));
    const report = await importUsageCsv(t.pool, csv(HEADER, ...lines), options);
    expect(report.rejected).toBe(25);
    expect(report.rejections).toHaveLength(20);
    expect(report.rejections[19]).toBe("line 21: tokens_used: must be an integer ≥ 0");
  });

  it("gives imported rows UUIDv7 ids in the file's line order", async () => {
    const ids = Array.from({ length: 50 }, () => randomUUID());
    expect(await importUsageCsv(t.pool, csv(HEADER, ...ids.map((event_id) => line({ event_id }))), options)).toMatchObject({ loaded: 50 });
    const rows = await t.db.selectFrom("token_usage").select(["id", "event_id"]).where("event_id", "in", ids).orderBy("id").execute();
    expect(rows.map((r) => r.event_id)).toEqual(ids);
    for (const { id } of rows) expect(id).toMatch(UUID_V7);
  });

  it("counts event_ids already stored or repeated in the file as duplicates and stores them once", async () => {
    const repeated = randomUUID();
    const first = await importUsageCsv(t.pool, csv(HEADER, line({ event_id: repeated, tokens_used: "100" }), line({ event_id: repeated, tokens_used: "200" })), options);
    expect(first).toMatchObject({ loaded: 1, duplicates: 1 });
    const before = await totalRows();
    const again = await importUsageCsv(t.pool, csv(HEADER, line({ event_id: repeated }), line({ event_id: repeated })), options);
    expect(again).toMatchObject({ loaded: 0, duplicates: 2, rejected: 0 });
    expect(await totalRows()).toBe(before);
    const row = await t.db.selectFrom("token_usage").select("tokens_used").where("event_id", "=", repeated).executeTakeFirstOrThrow();
    // The first line of the file wins.
    expect(row.tokens_used).toBe(100);
  });

  it("with --strict stores nothing when any line is rejected", async () => {
    const good = randomUUID();
    const report = await importUsageCsv(t.pool, csv(HEADER, line({ event_id: good }), line({ user_id: "nobody" })), { ...options, strict: true });
    expect(report).toMatchObject({ lines: 2, loaded: 0, rejected: 1, committed: false, rejections: ["line 3: user_id: must be a UUID"] });
    expect(await countEvents([good])).toBe(0);
  });

  it("with --dry-run reports what it would load and stores nothing", async () => {
    const stored = randomUUID();
    await importUsageCsv(t.pool, csv(HEADER, line({ event_id: stored })), options);
    const fresh = randomUUID();
    const before = await totalRows();
    const report = await importUsageCsv(t.pool, csv(HEADER, line({ event_id: stored }), line({ event_id: fresh })), { ...options, dryRun: true });
    expect(report).toMatchObject({ lines: 2, loaded: 1, duplicates: 1, committed: false });
    expect(await totalRows()).toBe(before);
  });

  it.each([
    ["an unknown column", `${HEADER},colour\n`, /column "colour": unknown field/],
    ["a missing required column", "user_id,action_type,model_used\n", /missing required column "tokens_used"/],
    ["a client-chosen id column", `id,${HEADER}\n`, /column "id": unknown field: tokenboard assigns ids/],
    ["a repeated column", `${HEADER},route\n`, /column "route" appears twice/],
    ["an empty file", "", /the file is empty/],
    ["an unclosed quote", `${HEADER}\n${line()}\n"${line()}\n`, /line \d+: the file is not valid CSV/],
  ])("refuses a file with %s, naming it, and stores nothing", async (_name, content, message) => {
    const before = await totalRows();
    const error = await importUsageCsv(t.pool, Readable.from([content]), options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageImportError);
    expect((error as UsageImportError).messages.join("\n")).toMatch(message);
    expect(await totalRows()).toBe(before);
  });

  it("reads a spreadsheet export: byte-order mark, CRLF line ends, spaces around header names", async () => {
    const id = randomUUID();
    const header = HEADER.split(",").map((c) => ` ${c} `).join(",");
    const report = await importUsageCsv(t.pool, Readable.from([`\ufeff${header}\r\n${line({ event_id: id, success: "TRUE" })}\r\n`]), options);
    expect(report).toMatchObject({ lines: 1, loaded: 1, rejected: 0 });
    expect(await countEvents([id])).toBe(1);
  });

  it("stores nothing when the input breaks off in the middle", async () => {
    const before = await totalRows();
    async function* brokenSource() {
      yield `${HEADER}\n${line()}\n${line()}\n`;
      throw new Error("disk read failed");
    }
    await expect(importUsageCsv(t.pool, Readable.from(brokenSource()), options)).rejects.toThrow("disk read failed");
    expect(await totalRows()).toBe(before);
  });

  it("loads a 100,000-line file", async () => {
    const user = randomUUID();
    const base = Date.parse("2025-01-01T00:00:00Z");
    const rows = Array.from({ length: 100_000 }, (_, i) =>
      [user, "chat_conversation", "gpt-4o", 2_000 + (i % 3_000), new Date(base + i * 60_000).toISOString(), `bulk-${user}-${i}`, "", "", "/api/viva/chat"].join(","),
    );
    const file = writeFile("bulk.csv", `${HEADER}\n${rows.join("\n")}\n`);
    const progress: number[] = [];
    const report = await importUsageCsv(t.pool, fs.createReadStream(file), { ...options, onProgress: (p) => progress.push(p.lines) });
    expect(progress).toEqual([100_000]);
    console.log(`import-usage: 100,000 lines in ${report.elapsedMs} ms (${Math.round(100_000_000 / report.elapsedMs)} rows/s)`);
    expect(report).toMatchObject({ lines: 100_000, loaded: 100_000, rejected: 0, committed: true });
    const sum = await t.db
      .selectFrom("token_usage")
      .select((eb) => [eb.fn.countAll<number>().as("n"), eb.fn.sum<number>("tokens_used").as("tokens")])
      .where("user_id", "=", user)
      .executeTakeFirstOrThrow();
    expect(sum.n).toBe(100_000);
    expect(Number(sum.tokens)).toBe(rows.reduce((total, _row, i) => total + 2_000 + (i % 3_000), 0));
    // Two busy cores can make this take tens of seconds; it measures, it is not a timing test.
  }, 180_000);
});

describe("npm run cli -- import-usage", () => {
  it("prints the summary and exits 0 when every line loads", async () => {
    const file = writeFile("cli-good.csv", `${HEADER}\n${line()}\n${line()}\n`);
    const { code, out } = await runCli([file]);
    expect(code).toBe(0);
    expect(out).toMatch(/loaded: +2/);
    expect(out).toMatch(/rejected: +0/);
    expect(out).toMatch(/rows\/s/);
  });

  it("exits 1 and lists the rejected lines when some are rejected", async () => {
    const file = writeFile("cli-bad.csv", `${HEADER}\n${line()}\n${line({ model_used: "" })}\n`);
    const { code, out } = await runCli([file]);
    expect(code).toBe(1);
    expect(out).toMatch(/loaded: +1/);
    expect(out).toContain("line 3: model_used: is required");
  });

  it("exits 1 with what to run, not SQL, when the database constraint lags the registry", async () => {
    const allowed = ACTION_TYPE_NAMES.filter((n) => n !== "frequency_flip").map((n) => `'${n}'`).join(",");
    await sql.raw(`ALTER TABLE public.token_usage DROP CONSTRAINT token_usage_action_type_check`).execute(t.db);
    await sql.raw(`ALTER TABLE public.token_usage ADD CONSTRAINT token_usage_action_type_check CHECK (action_type = ANY (ARRAY[${allowed}])) NOT VALID`).execute(t.db);
    try {
      const good = randomUUID();
      const file = writeFile("cli-drift.csv", `${HEADER}\n${line({ event_id: good })}\n${line({ action_type: "frequency_flip" })}\n`);
      const { code, err } = await runCli([file]);
      expect(code).toBe(1);
      expect(err).toMatch(/token_usage_action_type_check constraint .*npm run cli -- migrate/);
      expect(err).not.toMatch(/violates/);
      expect(await countEvents([good])).toBe(0);
    } finally {
      await syncActionTypeConstraint(t.db);
    }
  });

  it("exits 1 naming the column when the header is wrong", async () => {
    const file = writeFile("cli-header.csv", "user_id,colour\n");
    const { code, err } = await runCli([file]);
    expect(code).toBe(1);
    expect(err).toMatch(/column "colour": unknown field/);
    expect(err).toMatch(/nothing was stored/);
  });

  it.each([
    [[], /exactly one file/],
    [["a.csv", "b.csv"], /exactly one file/],
    [["/no/such/file.csv"], /file "\/no\/such\/file.csv" does not exist/],
    [["x.csv", "--fast"], /unknown option "--fast"; options are --dry-run, --strict/],
  ])("exits 2 with a message for bad arguments %j", async (args, message) => {
    const { code, err } = await runCli(args as string[]);
    expect(code).toBe(2);
    expect(err).toMatch(message);
  });
});
