/**
 * The outlier detection job on the whole data set: a full run from scratch (the issue's
 * target: under 30 s on 10M rows), per rule, then a second full run (must add nothing), then
 * an incremental run from the watermark (what the server does every 5 minutes). Beside it,
 * whether every case the generator planted was flagged.
 */
import { sql } from "kysely";
import { RULE_NAMES } from "../../app/domain/outlier-rules";
import { detectOutliers, type DetectReport } from "../../app/models/outliers.server";
import { formatMs } from "../measure";
import type { BenchContext, BenchResult, BenchScenario } from "../types";

const NAME = "outliers";
const FULL_RUN_LIMIT_MS = 30_000;

function perRule(report: DetectReport): string {
  return RULE_NAMES.map((r) => `${r} ${formatMs(report.rules[r].ms)}`).join(", ");
}

async function plantedRulesFound(ctx: BenchContext): Promise<{ found: string[]; missing: string[] }> {
  const rows = await sql<{ rule: string }>`SELECT DISTINCT rule FROM tokenboard.outlier_flags`.execute(ctx.db);
  const found = new Set(rows.rows.map((r) => r.rule));
  return { found: RULE_NAMES.filter((r) => found.has(r)), missing: RULE_NAMES.filter((r) => !found.has(r)) };
}

export const outliersScenario: BenchScenario = {
  name: NAME,
  run: async (ctx) => {
    // The data set is reused between bench runs: start from no flags and no watermark.
    await sql`TRUNCATE tokenboard.outlier_flags`.execute(ctx.db);
    await sql`DELETE FROM tokenboard.settings WHERE key = 'outlier_job'`.execute(ctx.db);

    const full = await detectOutliers(ctx.db, { full: true });
    ctx.log(`outliers: full run ${formatMs(full.ms)}, ${full.inserted.toLocaleString("en-US")} flags (${perRule(full)})`);
    const again = await detectOutliers(ctx.db, { full: true });
    const incremental = await detectOutliers(ctx.db);
    const planted = await plantedRulesFound(ctx);

    const results: BenchResult[] = [
      { scenario: NAME, metric: "full detection run, all six rules", measured: `${formatMs(full.ms)} (${full.inserted.toLocaleString("en-US")} flags)`, target: `< ${formatMs(FULL_RUN_LIMIT_MS)}`, pass: full.ms < FULL_RUN_LIMIT_MS },
      { scenario: NAME, metric: "time per rule (full run)", measured: perRule(full), target: "", pass: null },
      { scenario: NAME, metric: "second full run adds nothing", measured: `${again.inserted} new in ${formatMs(again.ms)}`, target: "0 new", pass: again.inserted === 0 },
      { scenario: NAME, metric: "incremental run (watermark − 3 days)", measured: formatMs(incremental.ms), target: "", pass: null },
      { scenario: NAME, metric: "rules with at least one flag (planted cases)", measured: `${planted.found.length} of ${RULE_NAMES.length}${planted.missing.length ? `; none for ${planted.missing.join(", ")}` : ""}`, target: `${RULE_NAMES.length} of ${RULE_NAMES.length}`, pass: planted.missing.length === 0 },
    ];
    return results;
  },
};
