import { getDb } from "../lib/db.server";
import { checkActionTypeDrift, type DriftReport } from "./action-type-sync.server";

const MAX_AGE_MS = 60_000;

declare global {
  var __tokenboardDrift: { report: DriftReport; at: number; refreshing?: Promise<void> } | undefined;
}

/**
 * The drift report for the banner. It counts rows by type, so it is computed at most once a
 * minute per process and served from memory in between (a stale report refreshes in the
 * background; the first request waits for it).
 */
export async function getDriftReport(): Promise<DriftReport | null> {
  const cached = globalThis.__tokenboardDrift;
  const refresh = async () => {
    const report = await checkActionTypeDrift(getDb());
    globalThis.__tokenboardDrift = { report, at: Date.now() };
  };
  if (!cached) {
    try {
      await refresh();
    } catch {
      return null;
    }
    return globalThis.__tokenboardDrift?.report ?? null;
  }
  if (Date.now() - cached.at > MAX_AGE_MS && !cached.refreshing) {
    cached.refreshing = refresh().catch(() => {
      cached.refreshing = undefined;
    });
  }
  return cached.report;
}
