/**
 * Timing helpers every bench scenario uses, so that all figures in the summary mean the same
 * thing: wall-clock milliseconds of warm repetitions, p50 and p95 by nearest rank.
 */
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
