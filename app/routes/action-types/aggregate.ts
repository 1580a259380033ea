import { ACTION_TYPES, formatExpectedRange, getActionType } from "~/domain/action-types";
import { quantileFromBins, type BinCount } from "~/domain/token-histogram";

/** Per action type for a range, as the rollup query returns it. */
export interface TypeStats {
  action_type: string;
  calls: number;
  failures: number;
  tokens: number;
  cost_cents: number;
  below_range: number;
  above_range: number;
  max_tokens: number | null;
}

export interface ActionTypeRow extends TypeStats {
  registered: boolean;
  expected: string;
  /** Approximate (log-histogram) percentiles; max is exact. */
  p50: number | null;
  p95: number | null;
  belowShare: number;
  aboveShare: number;
  override: number | null;
}

/**
 * One row per action type: every registered type (zero when unused) and every type seen in
 * the data, with percentiles read from the histogram bins and shares of calls out of range.
 */
export function actionTypeRows(stats: TypeStats[], bins: { action_type: string; bin: number; calls: number }[], overrides: Map<string, number>): ActionTypeRow[] {
  const byType = new Map(stats.map((s) => [s.action_type, s]));
  const binsByType = new Map<string, BinCount[]>();
  for (const b of bins) binsByType.set(b.action_type, [...(binsByType.get(b.action_type) ?? []), { bin: b.bin, calls: b.calls }]);
  const names = [...new Set([...ACTION_TYPES.map((t) => t.name), ...byType.keys()])];
  return names.map((name) => {
    const s = byType.get(name) ?? { action_type: name, calls: 0, failures: 0, tokens: 0, cost_cents: 0, below_range: 0, above_range: 0, max_tokens: null };
    const def = getActionType(name);
    const typeBins = binsByType.get(name) ?? [];
    return {
      ...s,
      registered: def !== undefined,
      expected: def ? formatExpectedRange(def.expectedRange) : "not in registry",
      p50: quantileFromBins(typeBins, 0.5, s.max_tokens),
      p95: quantileFromBins(typeBins, 0.95, s.max_tokens),
      belowShare: s.calls ? s.below_range / s.calls : 0,
      aboveShare: s.calls ? s.above_range / s.calls : 0,
      override: overrides.get(name) ?? null,
    };
  });
}
