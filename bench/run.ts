/**
 * `npm run bench [-- --rows 10M --compare 1M --only overview --fresh]`
 *
 * Builds or reuses the data sets, runs every scenario on each, prints results as they come
 * and one summary table at the end (also bench/results/latest.json and latest.md). A missed
 * target is a measurement, not a failure: the exit code is non-zero only on an error.
 */
import fs from "node:fs";
import path from "node:path";
import { z } from "zod";
import { countOption, parseCliOptions } from "../db/seed/cli-options";
import { BENCH_DIR, directorySize, openDataset, settleAfterWrites, type OpenDataset } from "./dataset";
import { formatMs, machineProbe } from "./measure";
import { SCENARIOS } from "./scenarios/index";
import type { BenchResult } from "./types";

const optionsSchema = z.object({
  rows: countOption("rows", 10_000).default("10000000"),
  compare: countOption("compare").default("1000000"),
  only: z
    .string()
    .default(SCENARIOS.map((s) => s.name).join(","))
    .transform((list) => list.split(",").map((s) => s.trim()).filter(Boolean))
    .refine((names) => names.length > 0 && names.every((n) => SCENARIOS.some((s) => s.name === n)), {
      message: `--only takes scenario names separated by commas: ${SCENARIOS.map((s) => s.name).join(", ")}`,
    }),
  fresh: z.boolean().default(false),
  // Write figures count with durability on (as `npm start` runs); "both" adds them with it off beside.
  durability: z.enum(["full", "both"], { errorMap: () => ({ message: '--durability takes "full" or "both"' }) }).default("both"),
});

const OPTION_KINDS = { rows: { type: "string" }, compare: { type: "string" }, only: { type: "string" }, fresh: { type: "boolean" }, durability: { type: "string" } } as const;

interface SummaryRow extends BenchResult {
  dataset: string;
}

const log = (line: string) => console.log(`[bench] ${line}`);

export function sizeLabel(rows: number): string {
  if (rows >= 1_000_000 && rows % 100_000 === 0) return `${rows / 1_000_000}M`;
  if (rows >= 1_000 && rows % 1_000 === 0) return `${rows / 1_000}k`;
  return rows.toLocaleString("en-US");
}

function verdict(pass: boolean | null): string {
  return pass === null ? "—" : pass ? "PASS" : "MISS";
}

function formatBytes(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${Math.round(bytes / 1e6)} MB`;
}

/** A plain-text table, columns padded to their widest cell. */
export function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

const HEADER = ["scenario", "metric", "data set", "measured", "target", "result"];
const cells = (r: SummaryRow) => [r.scenario, r.metric, r.dataset, r.measured, r.target, verdict(r.pass)];

function writeResults(rows: SummaryRow[], startedAt: Date, argv: string[]): void {
  const dir = path.join(BENCH_DIR, "results");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "latest.json"), JSON.stringify({ startedAt: startedAt.toISOString(), args: argv, results: rows }, null, 2));
  const escape = (c: string) => c.replaceAll("|", "\\|");
  const md = [
    `# Bench results (${startedAt.toISOString()})`,
    "",
    `\`npm run bench${argv.length ? ` -- ${argv.join(" ")}` : ""}\` on ${process.platform}/${process.arch}, Node ${process.version}, embedded PostgreSQL.`,
    "",
    `| ${HEADER.join(" | ")} |`,
    `|${HEADER.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${cells(r).map(escape).join(" | ")} |`),
    "",
  ].join("\n");
  fs.writeFileSync(path.join(dir, "latest.md"), md);
}

/** Load time and size of a data set, as summary lines of their own. */
function datasetRows(dataset: OpenDataset, label: string): SummaryRow[] {
  const seconds = dataset.flag.loadMs / 1000;
  return [
    {
      scenario: "dataset",
      metric: dataset.built ? "generate + load (COPY, indexes, rollups)" : "generate + load (earlier run, reused)",
      dataset: label,
      measured: `${seconds.toFixed(1)} s (${Math.round(dataset.flag.rows / seconds).toLocaleString("en-US")} rows/s)`,
      target: "",
      pass: null,
    },
    { scenario: "dataset", metric: "size on disk", dataset: label, measured: formatBytes(directorySize(dataset.dir)), target: "", pass: null },
  ];
}

/** A summary row with the machine probe (bench/measure.ts), so slower spells show in the table. */
async function probeRow(dataset: OpenDataset, label: string, when: string): Promise<SummaryRow> {
  const probe = await machineProbe(dataset.pool);
  const measured = `Node ${formatMs(probe.nodeMs)}, PostgreSQL ${formatMs(probe.postgresMs)}`;
  log(`machine probe ${when}: ${measured}`);
  return { scenario: "machine", metric: `fixed CPU work ${when} (longer = slower spell)`, dataset: label, measured, target: "", pass: null };
}

/** Runs `scenarios` on an open data set, adds their rows to `summary`, closes it; answers the errors. */
async function runScenarios(dataset: OpenDataset, label: string, scenarios: typeof SCENARIOS, summary: SummaryRow[]): Promise<number> {
  let errors = 0;
  try {
    summary.push({ scenario: "machine", metric: "durability (fsync, synchronous_commit, full_page_writes)", dataset: label, measured: dataset.durability === "full" ? "on" : "off", target: "", pass: null });
    summary.push(await probeRow(dataset, label, "before the scenarios"));
    for (const scenario of scenarios) {
      log(`${scenario.name} on data set ${label} (database settled in ${formatMs(await settleAfterWrites(dataset.db))})`);
      try {
        const results = await scenario.run({ db: dataset.db, pool: dataset.pool, url: dataset.url, rows: dataset.flag.rows, log });
        for (const result of results) {
          log(`  ${result.metric}: ${result.measured}${result.target ? ` (target ${result.target}: ${verdict(result.pass)})` : ""}`);
          summary.push({ ...result, dataset: label });
        }
      } catch (error) {
        errors++;
        const message = error instanceof Error ? error.message : String(error);
        log(`  ${scenario.name} failed: ${message}`);
        summary.push({ scenario: scenario.name, metric: "error", dataset: label, measured: message.slice(0, 120), target: "", pass: false });
      }
    }
    summary.push(await probeRow(dataset, label, "after the scenarios"));
  } finally {
    await dataset.close();
  }
  return errors;
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseCliOptions(argv, OPTION_KINDS, optionsSchema);
  if (!parsed.ok) {
    console.error(`bench: ${parsed.message}`);
    return 2;
  }
  const options = parsed.data;
  const startedAt = new Date();
  const sizes = [...new Set([options.compare, options.rows].filter((n) => n > 0))].sort((a, b) => a - b);
  const scenarios = SCENARIOS.filter((s) => options.only.includes(s.name));
  const summary: SummaryRow[] = [];
  let errors = 0;

  for (const rows of sizes) {
    const label = sizeLabel(rows);
    const durable = await openDataset(rows, { fresh: options.fresh, durability: "full", log });
    summary.push(...datasetRows(durable, label));
    errors += await runScenarios(durable, label, scenarios, summary);
    const writes = scenarios.filter((s) => s.writes);
    if (options.durability === "both" && writes.length) {
      const label2 = `${label}, durability off`;
      log(`write scenarios again on ${label} rows with fsync, synchronous_commit and full_page_writes off, for comparison`);
      errors += await runScenarios(await openDataset(rows, { fresh: false, durability: "none", log }), label2, writes, summary);
    }
  }

  console.log(`\n${renderTable(HEADER, summary.map(cells))}\n`);
  writeResults(summary, startedAt, argv);
  log(`summary written to ${path.relative(process.cwd(), path.join(BENCH_DIR, "results"))}/latest.{json,md}; data sets under ${path.relative(process.cwd(), path.join(BENCH_DIR, ".data"))} (${formatBytes(directorySize(path.join(BENCH_DIR, ".data")))})`);
  return errors ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
