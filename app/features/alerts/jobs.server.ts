import type { Kysely } from "kysely";
import type { Database } from "../../../db/types";
import { getPool } from "../../lib/db.server";
import { evaluateBalanceAlerts } from "./balance.server";
import { deliverMonthlyReports } from "./reports.server";
import { deliverDueAlerts } from "./outbox.server";
import { evaluateDriftAlerts, evaluateIngestSilence, evaluateOutlierAlerts } from "./sources.server";
import { evaluateSpendAlerts } from "./spend.server";

interface AlertJob {
  name: string;
  intervalMs: number;
  run: (db: Kysely<Database>) => Promise<{ summary?: string; backlog: boolean }>;
}

/** The alert jobs server/jobs.ts runs; every 10 s (balances), 30 s (spend) and 5 s (delivery) keep an alert within 60 s of its cause. */
export const alertJobs: AlertJob[] = [
  {
    name: "alerts-balance",
    intervalMs: 10_000,
    run: async (db) => {
      const r = await evaluateBalanceAlerts(db);
      return { summary: r.alerts ? `${r.alerts} balance alerts from ${r.entries} ledger entries` : undefined, backlog: r.backlog };
    },
  },
  {
    name: "alerts-spend",
    intervalMs: 30_000,
    run: async (db) => {
      const r = await evaluateSpendAlerts(db);
      return { summary: r.alerts ? `${r.alerts} spend alerts from ${r.rules} rules` : undefined, backlog: false };
    },
  },
  {
    name: "alerts-outliers",
    intervalMs: 15_000,
    run: async (db) => {
      const r = await evaluateOutlierAlerts(db);
      return { summary: r.alerts ? `${r.alerts} outlier alerts for ${r.flags} new flags` : undefined, backlog: false };
    },
  },
  {
    name: "alerts-ingest-silent",
    intervalMs: 30_000,
    run: async (db) => {
      const r = await evaluateIngestSilence(db);
      return { summary: r.alerts ? `${r.alerts} ingest-silent alerts` : undefined, backlog: false };
    },
  },
  // It counts rows by unregistered type (an index scan), as the drift banner does once a minute.
  {
    name: "alerts-drift",
    intervalMs: 60_000,
    run: async (db) => ({ summary: (await evaluateDriftAlerts(db)).alerted ? "drift alert queued" : undefined, backlog: false }),
  },
  // The CSV is read with the app's pool (COPY needs a pg client); a month is sent once per subscription.
  {
    name: "alerts-monthly-reports",
    intervalMs: 600_000,
    run: async (db) => {
      const r = await deliverMonthlyReports(db, getPool());
      return { summary: r.delivered ? `${r.delivered} monthly reports delivered` : undefined, backlog: false };
    },
  },
  {
    name: "alerts-deliver",
    intervalMs: 5_000,
    run: async (db) => {
      const r = await deliverDueAlerts(db);
      const total = r.sent + r.failed + r.dead;
      return { summary: total ? `sent ${r.sent}, failed ${r.failed}, dead ${r.dead}` : undefined, backlog: r.backlog };
    },
  },
];
