import { z } from "zod";
import { prepareDatabase } from "../../db/setup";
import { adoptBillingOnce, describeAdoption } from "../../app/models/billing-adoption.server";
import { countOption, parseCliOptions } from "../../db/seed/cli-options";
import { generateDemoData } from "../../db/seed/generator";
import { withCliDatabase } from "./database";
import type { CliCommand } from "./types";

const optionsSchema = z.object({
  users: countOption("users", 2).default("1000"),
  rows: countOption("rows").default("300000"),
  days: countOption("days", 14).default("90"),
  seed: countOption("seed").refine((n) => n < 2 ** 32, "--seed must fit in 32 bits").default("42"),
  force: z.boolean().default(false),
});

const OPTION_KINDS = {
  users: { type: "string" },
  rows: { type: "string" },
  days: { type: "string" },
  seed: { type: "string" },
  force: { type: "boolean" },
} as const;

export const command: CliCommand = {
  summary: "load deterministic demo data [--users 1000] [--rows 300000] [--days 90] [--seed 42] [--force]",
  run: async (args) => {
    const parsed = parseCliOptions(args, OPTION_KINDS, optionsSchema);
    if (!parsed.ok) {
      console.error(`seed: ${parsed.message}`);
      return 2;
    }
    const options = parsed.data;
    return withCliDatabase(async ({ db, url }) => {
      // The demo's billing history is adopted after it is loaded, not before (on an empty database).
      await prepareDatabase(db, { adoptBilling: false });
      const existing = await db.selectFrom("token_usage").select("id").limit(1).executeTakeFirst();
      if (existing && !options.force) {
        console.error("seed: token_usage already has rows; add --force to load demo data on top of them");
        return 1;
      }
      console.log(`seed: ${options.users.toLocaleString("en-US")} users, ${options.rows.toLocaleString("en-US")} usage rows over ${options.days} days (seed ${options.seed})`);
      let lastTenth = -1;
      const result = await generateDemoData(url, {
        ...options,
        now: new Date(),
        log: (line) => console.log(`  ${line}`),
        onProgress: (done, total) => {
          const tenth = Math.floor((done / Math.max(total, 1)) * 10);
          if (tenth === lastTenth) return;
          lastTenth = tenth;
          console.log(`  ${tenth * 10}% (${done.toLocaleString("en-US")} / ${total.toLocaleString("en-US")} rows)`);
        },
      });
      const adopted = await adoptBillingOnce(db);
      console.log(adopted ? `seed: ${describeAdoption(adopted)}` : "seed: billing was already adopted on this database; the demo's token_transactions were not adopted");
      const seconds = result.ms / 1000;
      console.log(`seed: loaded ${result.rows.toLocaleString("en-US")} rows and ${result.users.toLocaleString("en-US")} users in ${seconds.toFixed(1)} s (${Math.round(result.rows / seconds).toLocaleString("en-US")} rows/s)`);
      return 0;
    });
  },
};
