import { z } from "zod";
import { describeClosedDays, rebuildRollups, runRollup } from "../../app/models/rollup.server";
import { withCliDatabase } from "./database";
import type { CliCommand } from "./types";

const argsSchema = z
  .array(z.string())
  .transform((args) => ({ rebuild: args.includes("--rebuild"), unknown: args.filter((a) => a !== "--rebuild") }))
  .refine((a) => a.unknown.length === 0, (a) => ({ message: `unknown option ${a.unknown[0]}; usage: rollup [--rebuild]` }));

export const command: CliCommand = {
  summary: "roll up new usage rows into the dashboard rollups (--rebuild: rebuild them all from token_usage)",
  run: async (args) => {
    const parsed = argsSchema.safeParse(args);
    if (!parsed.success) {
      console.error(parsed.error.issues[0]?.message);
      return 2;
    }
    return withCliDatabase(async ({ db }) => {
      if (parsed.data.rebuild) {
        const built = await rebuildRollups(db);
        console.log(`rollup rebuilt: ${built.rows.toLocaleString("en-US")} rows of token_usage in ${built.ms} ms`);
      }
      const run = await runRollup(db);
      if (run.skipped) {
        console.error("another rollup (a rebuild) is running; try again when it is done");
        return 1;
      }
      if (run.closed) console.log(`rollup: ${describeClosedDays(run.closed)}`);
      console.log(`rollup: ${run.rows.toLocaleString("en-US")} queued rows processed in ${run.batches} batch(es), ${run.ms} ms`);
      return 0;
    });
  },
};
