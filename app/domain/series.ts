import { eachDate } from "./period";

export interface DayValue {
  day: string;
  key: string;
  value: number;
}

/**
 * Pivots (day, key, value) rows from SQL into one point per day with a field per key, days
 * without rows filled with zeros, so a chart never skips a day.
 */
export function pivotByDay(rows: DayValue[], from: string, to: string): { points: Record<string, number | string>[]; keys: string[] } {
  const keys = [...new Set(rows.map((r) => r.key))].sort();
  const byDay = new Map<string, Record<string, number | string>>();
  for (const day of eachDate(from, to)) {
    const point: Record<string, number | string> = { date: day };
    for (const key of keys) point[key] = 0;
    byDay.set(day, point);
  }
  for (const row of rows) {
    const point = byDay.get(row.day);
    if (point) point[row.key] = row.value;
  }
  return { points: [...byDay.values()], keys };
}
