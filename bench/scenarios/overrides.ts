/**
 * The override impact preview (app/models/overrides.server.ts previewImpact): what the last 30
 * days of the data set's busiest action type would have charged, read from the rollups and the
 * partial index of failed rows, beside the same figures summed from the type's raw rows.
 */
import { sql } from "kysely";
import { previewImpact, previewWindow } from "../../app/models/overrides.server";
import { describeTiming, formatRatio, measure } from "../measure";
import type { BenchScenario } from "../types";

const NAME = "overrides";

export const overridesScenario: BenchScenario = {
  name: NAME,
  run: async (ctx) => {
    const window = previewWindow();
    const busiest = await sql<{ action_type: string }>`
      SELECT action_type FROM tokenboard.usage_rollup_day WHERE day >= ${window.start}::date GROUP BY 1 ORDER BY sum(calls) DESC LIMIT 1`.execute(ctx.db);
    const type = busiest.rows[0]?.action_type;
    if (!type) return [];
    const raw = () => sql`
      SELECT count(*)::bigint AS calls, COALESCE(sum(tokens_used), 0)::bigint AS tokens FROM token_usage
      WHERE action_type = ${type} AND success AND created_at >= ${window.start} AND created_at < ${window.end}`.execute(ctx.db);
    const app = await measure(() => previewImpact(ctx.db, type, 1_000), { repetitions: 7, warmup: 1 });
    const naive = await measure(raw, { repetitions: 3, warmup: 1 });
    ctx.log(`overrides: preview of ${type} from rollups ${describeTiming(app)}; from raw rows ${describeTiming(naive)}`);
    return [
      { scenario: NAME, metric: `impact preview, 30 days of ${type} (rollups + failed-row index)`, measured: describeTiming(app), target: "", pass: null },
      { scenario: NAME, metric: "impact preview from the type's raw rows (the way it was)", measured: describeTiming(naive), target: "", pass: null },
      { scenario: NAME, metric: "impact preview: rollups vs raw rows (p50)", measured: `${formatRatio(naive.p50 / app.p50)} faster`, target: "", pass: null },
    ];
  },
};
