/**
 * Every bench scenario, in the order `npm run bench` runs them. Adding one is one file in
 * bench/scenarios/ exporting a BenchScenario (bench/types.ts; timing helpers in
 * bench/measure.ts) and one line here.
 */
import type { BenchScenario } from "../types";
import { overviewScenario } from "./overview";
import { analyticsScenario } from "./analytics";
import { outliersScenario } from "./outliers";
import { ingestScenario } from "./ingest";
import { otlpScenario } from "./otlp";
import { ledgerScenario } from "./ledger";
import { overridesScenario } from "./overrides";
import { exportScenario } from "./export";
import { loadScenario } from "./load";
import { moneyScenario } from "./money";

export const SCENARIOS: BenchScenario[] = [
  overviewScenario,
  analyticsScenario,
  outliersScenario,
  ingestScenario,
  otlpScenario,
  ledgerScenario,
  overridesScenario,
  exportScenario,
  moneyScenario,
  loadScenario,
];
