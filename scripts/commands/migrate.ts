import { prepareDatabase } from "../../db/setup";
import { describeAdoption } from "../../app/models/billing-adoption.server";
import { withCliDatabase } from "./database";
import type { CliCommand } from "./types";

export const command: CliCommand = {
  summary: "apply migrations, then the registry's action-type constraint and default overrides",
  run: () =>
    withCliDatabase(async ({ db }) => {
      const result = await prepareDatabase(db);
      console.log(result.migrations.length ? `migrations applied: ${result.migrations.join(", ")}` : "migrations: up to date");
      if (result.constraint.changed) {
        console.log(`constraint token_usage_action_type_check updated; added: ${result.constraint.added.join(", ") || "none"}`);
        if (!result.constraint.validated) console.log("  existing rows hold types the constraint does not allow: run check-action-types");
      } else {
        console.log("constraint token_usage_action_type_check: allows every registered type");
      }
      if (result.constraint.keptUnregistered.length) {
        console.log(`  kept types the database already allowed but the registry lacks: ${result.constraint.keptUnregistered.join(", ")}`);
      }
      if (result.initialRollup) console.log(`rollups built for ${result.initialRollup.rows} existing rows in ${result.initialRollup.ms} ms`);
      if (result.billingAdoption) console.log(describeAdoption(result.billingAdoption));
      if (result.seededOverrides.length) console.log(`default overrides added: ${result.seededOverrides.join(", ")}`);
      return 0;
    }),
};
