import { z } from "zod";
import { ACTION_TYPES, formatExpectedRange } from "../../app/domain/action-types";
import { checkActionTypeDrift } from "../../app/models/action-type-sync.server";
import { withCliDatabase } from "./database";
import type { CliCommand } from "./types";

const argsSchema = z.array(z.enum(["--json", "--registry"], { errorMap: () => ({ message: "options are --json and --registry" }) }));

export const command: CliCommand = {
  summary: "compare registry, live constraint, overrides and the types in rows; exit 1 on drift",
  run: async (args) => {
    const parsed = argsSchema.safeParse(args);
    if (!parsed.success) {
      console.error(`check-action-types: ${parsed.error.issues[0]?.message}`);
      return 2;
    }
    if (args.includes("--registry")) {
      for (const t of ACTION_TYPES) console.log(`${t.name.padEnd(30)} ${t.category.padEnd(7)} ${t.unit.padEnd(11)} ${formatExpectedRange(t.expectedRange)}`);
      return 0;
    }
    return withCliDatabase(async ({ db }) => {
      const report = await checkActionTypeDrift(db);
      if (args.includes("--json")) {
        console.log(JSON.stringify(report, null, 2));
      } else if (report.ok) {
        console.log(`ok: registry (${ACTION_TYPES.length} types), constraint, overrides and rows agree`);
      } else {
        console.log(`drift: ${report.items.length} difference${report.items.length === 1 ? "" : "s"}`);
        for (const item of report.items) console.log(`  - ${item.message}`);
      }
      return report.ok ? 0 : 1;
    });
  },
};
