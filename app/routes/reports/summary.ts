/**
 * Pure shaping of the monthly figures for the page: change against the previous month and the
 * registry's view of each action type. Numbers are summed in SQL; nothing here adds rows up.
 */
import { formatExpectedRange, getActionType } from "~/domain/action-types";
import { addDays } from "~/domain/period";

export interface MonthFigures {
  calls: number;
  tokens_used: number;
  cost_cents: number;
  failures: number;
  users: number;
}

export interface Change {
  current: number;
  previous: number;
  /** Relative change; null when the previous month had nothing to compare with. */
  ratio: number | null;
}

export function change(current: number, previous: number): Change {
  return { current, previous, ratio: previous === 0 ? null : (current - previous) / previous };
}

export function failureRate(figures: Pick<MonthFigures, "calls" | "failures">): number {
  return figures.calls === 0 ? 0 : figures.failures / figures.calls;
}

export function monthChanges(current: MonthFigures, previous: MonthFigures) {
  return {
    tokens: change(current.tokens_used, previous.tokens_used),
    calls: change(current.calls, previous.calls),
    costCents: change(current.cost_cents, previous.cost_cents),
    users: change(current.users, previous.users),
    failureRate: change(failureRate(current), failureRate(previous)),
  };
}

export function describeType(name: string) {
  const definition = getActionType(name);
  return {
    label: definition?.label ?? name,
    registered: definition !== undefined,
    expectedRange: definition ? formatExpectedRange(definition.expectedRange) : "not in the registry",
  };
}

/** First and last local date of a YYYY-MM month. */
export function monthDates(month: string): { from: string; to: string } {
  const from = `${month}-01`;
  const [year, mm] = month.split("-").map(Number) as [number, number];
  const next = mm === 12 ? `${year + 1}-01-01` : `${year}-${String(mm + 1).padStart(2, "0")}-01`;
  return { from, to: addDays(next, -1) };
}
