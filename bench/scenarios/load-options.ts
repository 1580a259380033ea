import { z } from "zod";

/**
 * The load scenario's knobs, read from the environment (bench/scenarios/load.ts). A value out of
 * range or not a number stops the bench with the variable's name rather than running a load of
 * NaN seconds.
 */
const loadOptionsSchema = z.object({
  /** How long each of the two runs sends events. */
  BENCH_LOAD_SECONDS: z.coerce.number().int().min(5).max(300).default(60),
  /** Overview loads a second at most: 300 a minute, a busy staff's worth. */
  BENCH_LOAD_READS: z.coerce.number().min(0.1).max(50).default(5),
  /** Recurring users; as many as the data set has unless given. */
  BENCH_LOAD_USERS: z.coerce.number().int().min(1).max(10_000_000).optional(),
  /**
   * Events are stamped within this many seconds before they are sent: a minute, as a batching
   * client's are. 86400 spreads them over the last day, as the bench did until the evening of
   * 2026-11-30; the share of them stamped yesterday, which the rollup job also writes into the
   * per-user month rollups (decision 014), then depends on the hour the bench runs.
   */
  BENCH_LOAD_STAMP_SECONDS: z.coerce.number().int().min(1).max(31 * 86_400).default(60),
  /**
   * Events each of the two runs sends at most, besides the time bound: a run stops at whichever
   * comes first. 5,000,000 (~1.4 GB of rows and index entries on the 10M set, deleted afterwards)
   * is above what 60 s send here (~1.8M), so by default the time ends a run; at least one batch.
   */
  BENCH_LOAD_MAX_EVENTS: z.coerce.number().int().min(1000).max(50_000_000).default(5_000_000),
});

export type LoadOptions = z.infer<typeof loadOptionsSchema>;

export function parseLoadOptions(env: Readonly<Record<string, string | undefined>>): LoadOptions {
  const picked = Object.fromEntries(Object.keys(loadOptionsSchema.shape).flatMap((name) => (env[name] === undefined || env[name] === "" ? [] : [[name, env[name]]])));
  const parsed = loadOptionsSchema.safeParse(picked);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${issue?.path.join(".") ?? "load options"}: ${issue?.message ?? "invalid"}`);
  }
  return parsed.data;
}
