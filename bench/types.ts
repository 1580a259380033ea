import type { Kysely } from "kysely";
import type pg from "pg";
import type { Database } from "../db/types";

/** What every bench scenario receives: a database already holding the data set. */
export interface BenchContext {
  db: Kysely<Database>;
  pool: pg.Pool;
  url: string;
  /** Rows of token_usage in the data set (1M or 10M). */
  rows: number;
  log: (line: string) => void;
}

/** One measured line of the summary table. */
export interface BenchResult {
  scenario: string;
  /** e.g. "p95 overview loader", with the data-set size. */
  metric: string;
  /** The measured value, formatted with its unit. */
  measured: string;
  /** What the issue asks, e.g. "< 100 ms" or ">= 20x"; empty when it is a comparison only. */
  target: string;
  pass: boolean | null;
}

export interface BenchScenario {
  name: string;
  /** Its figures are writes (ingest, ledger, load): measured with durability on, and off beside it on request. */
  writes?: boolean;
  run: (ctx: BenchContext) => Promise<BenchResult[]>;
}
