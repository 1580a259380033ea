/**
 * One export in its own process, so its peak RSS is its own: `node --import tsx
 * bench/scenarios/export-child.ts <streaming-raw|naive-raw|streaming-monthly> <start ISO> <end ISO>`
 * (DATABASE_URL set). Writes the CSV to /dev/null and prints {rows, bytes, ms, maxRssMb, cpuSeconds} as JSON.
 */
import fs from "node:fs";
import { pipeline } from "node:stream/promises";
import { Writable } from "node:stream";
import { createDb } from "../../db/database";
import { stringifyCsv, type CsvCell } from "../../app/domain/csv";
import { openCsvExport, RAW_COLUMNS, rawCsvSql, withReportScope } from "../../app/models/reports.server";
import type { MonthPeriod } from "../../app/domain/period";

const [mode, startIso, endIso] = process.argv.slice(2) as [string, string, string];
const period: MonthPeriod = { month: "bench", tz: "UTC", start: new Date(startIso), end: new Date(endIso), partial: false };
const { db, pool } = createDb(process.env.DATABASE_URL as string, 2);
const started = performance.now();
let bytes = 0;
let lines = 0;

function counter(): Writable {
  const sink = fs.createWriteStream("/dev/null");
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
      sink.write(chunk, done);
    },
  });
}

if (mode === "naive-raw") {
  // The way to avoid: every row in memory, then the whole CSV as one string.
  const rows = await withReportScope(pool, period, undefined, async (client) => (await client.query({ text: rawCsvSql(), rowMode: "array" })).rows as CsvCell[][]);
  const text = stringifyCsv(RAW_COLUMNS.map((c) => ({ name: c.name, kind: c.kind === "uuid" || c.kind === "json" ? "text" : c.kind })), rows);
  const out = counter();
  out.end(Buffer.from(text));
  await new Promise((resolve) => out.on("finish", resolve));
} else {
  await pipeline(await openCsvExport(pool, mode === "streaming-monthly" ? "monthly" : "raw", period), counter());
}
const ms = performance.now() - started;
const usage = process.resourceUsage();
// CPU of this process since it started (module loading included: a CLI export pays it too).
console.log(JSON.stringify({ rows: lines - 1, bytes, ms, maxRssMb: usage.maxRSS / 1024, cpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6 }));
await db.destroy();
process.exit(0);
