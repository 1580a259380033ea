/**
 * Timing helpers every bench scenario uses, so that all figures in the summary mean the same
 * thing: wall-clock milliseconds of warm repetitions, p50 and p95 by nearest rank.
 */
import fs from "node:fs";
import type pg from "pg";
import type { BenchResult } from "./types";

export interface Timing {
  samples: number[];
  p50: number;
  p95: number;
  min: number;
  max: number;
}

export interface MeasureOptions {
  repetitions: number;
  /** Untimed runs first, so caches and plans are warm (what a busy dashboard sees). */
  warmup?: number;
}

/** Nearest-rank percentile of already sorted samples. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

export function summarize(samples: readonly number[]): Timing {
  const sorted = [...samples].sort((a, b) => a - b);
  return { samples: [...samples], p50: percentile(sorted, 50), p95: percentile(sorted, 95), min: sorted[0] ?? Number.NaN, max: sorted[sorted.length - 1] ?? Number.NaN };
}

/** Runs `fn` `warmup` times untimed, then `repetitions` times timed, one after another. */
export async function measure(fn: () => Promise<unknown>, options: MeasureOptions): Promise<Timing> {
  for (let i = 0; i < (options.warmup ?? 1); i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < options.repetitions; i++) {
    const started = performance.now();
    await fn();
    samples.push(performance.now() - started);
  }
  return summarize(samples);
}

export function formatMs(ms: number): string {
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 100) return `${Math.round(ms).toLocaleString("en-US")} ms`;
  return `${ms.toFixed(1)} ms`;
}

export function formatRatio(ratio: number): string {
  return `${ratio >= 100 ? Math.round(ratio).toLocaleString("en-US") : ratio.toFixed(1)}x`;
}

/** "12.3 ms p95 (p50 10.1 ms, n=30)" */
export function describeTiming(timing: Timing): string {
  return `${formatMs(timing.p95)} p95 (p50 ${formatMs(timing.p50)}, n=${timing.samples.length})`;
}

/** A timing against an upper limit in ms, as one summary line. */
export function timingResult(scenario: string, metric: string, timing: Timing, limitMs: number | null): BenchResult {
  return {
    scenario,
    metric,
    measured: describeTiming(timing),
    target: limitMs === null ? "" : `p95 < ${formatMs(limitMs)}`,
    pass: limitMs === null ? null : timing.p95 < limitMs,
  };
}

/** How many times faster `fast` is than `slow` at p95, against a minimum ratio. */
export function speedupResult(scenario: string, metric: string, fast: Timing, slow: Timing, minRatio: number | null): BenchResult {
  const ratio = slow.p95 / fast.p95;
  return {
    scenario,
    metric,
    measured: formatRatio(ratio),
    target: minRatio === null ? "" : `>= ${minRatio}x`,
    pass: minRatio === null ? null : ratio >= minRatio,
  };
}

/**
 * CPU seconds (user + system) the PostgreSQL server has used so far, read from /proc: every
 * child of the postmaster that is alive, plus the postmaster's count for its children that have
 * exited (a COPY's parallel workers live only as long as their query). Null where /proc is not
 * there. Take it before and after a run: `cpuDelta` answers the difference, counting a process
 * that started in between from zero and one that ended in between from the first reading.
 */
export async function postgresCpu(pool: pg.Pool): Promise<Map<number, number> | null> {
  const stat = (pid: number | string): string[] | null => {
    try {
      const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      return text.slice(text.lastIndexOf(")") + 2).split(" ");
    } catch {
      return null; // not Linux, or the process has ended
    }
  };
  const { rows } = await pool.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
  const postmaster = Number(stat(rows[0]?.pid ?? 0)?.[1]);
  const own = postmaster ? stat(postmaster) : null;
  if (!own) return null;
  const ticksPerSecond = 100; // USER_HZ on Linux
  const seconds = (fields: string[], from: number, count: number) => fields.slice(from, from + count).reduce((sum, f) => sum + Number(f), 0) / ticksPerSecond;
  // Fields after the command: 1 ppid, 11 utime, 12 stime, 13 cutime, 14 cstime.
  const cpu = new Map<number, number>([[postmaster, seconds(own, 11, 4)]]);
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = stat(entry);
    if (fields && Number(fields[1]) === postmaster) cpu.set(Number(entry), seconds(fields, 11, 2));
  }
  return cpu;
}

/**
 * postgresCpu once the backends that appeared since `before` have ended (or `maxMs` passed):
 * a finished client's backend exits a moment after the client does, and only then is its CPU
 * added to the postmaster's count for exited children.
 */
export async function postgresCpuSettled(pool: pg.Pool, before: Map<number, number> | null, maxMs = 2_000): Promise<Map<number, number> | null> {
  const deadline = performance.now() + maxMs;
  for (;;) {
    const now = await postgresCpu(pool);
    if (!before || !now || performance.now() > deadline) return now;
    // The reading's own backend belongs to `pool`, which was there before.
    if ([...now.keys()].every((pid) => before.has(pid))) return now;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export function cpuDelta(before: Map<number, number> | null, after: Map<number, number> | null): number | null {
  if (!before || !after) return null;
  let total = 0;
  for (const [pid, seconds] of after) total += seconds - (before.get(pid) ?? 0);
  // A process that was there before and has exited since: the postmaster's count for exited
  // children now holds all of its CPU, of which `before` had already counted this much. (Until
  // 2026-11-30 it was counted twice: a backend of an earlier scenario's pool that ended during
  // the 1M raw export made that export's PostgreSQL CPU 56.4 s; 2.3–4.4 s in other runs.)
  for (const [pid, seconds] of before) if (!after.has(pid)) total -= seconds;
  return total;
}

/**
 * This machine's speed right now: the same fixed work timed in Node (a JS loop) and in
 * PostgreSQL (an executor loop), median of three each. On a shared VM that runs in slower
 * spells these put a run's figures in context: when the probes take longer, so does the rest.
 */
export async function machineProbe(pool: pg.Pool): Promise<{ nodeMs: number; postgresMs: number }> {
  const node: number[] = [];
  const postgres: number[] = [];
  for (let i = 0; i < 3; i++) {
    let started = performance.now();
    let x = 0;
    for (let k = 1; k <= 20_000_000; k++) x += Math.sqrt(k) % 3;
    if (x < 0) throw new Error("unreachable: keeps the loop from being optimised away");
    node.push(performance.now() - started);
    started = performance.now();
    await pool.query("SELECT count(*) FROM generate_series(1, 3000000) s WHERE s % 7 = 3");
    postgres.push(performance.now() - started);
  }
  return { nodeMs: summarize(node).p50, postgresMs: summarize(postgres).p50 };
}
