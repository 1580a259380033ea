import { z } from "zod";
import { prepareDatabase } from "../../db/setup";
import { adoptBillingOnce, adoptionWatermark, describeAdoption } from "../../app/models/billing-adoption.server";
import { withCliDatabase } from "./database";
import type { CliCommand } from "./types";

const argsSchema = z.array(z.string()).max(0, "adopt-billing takes no options; usage: adopt-billing");

export const command: CliCommand = {
  summary: "adopt the seed app's token_transactions and charge the usage already there (once per database; start does it too)",
  run: async (args) => {
    const parsed = argsSchema.safeParse(args);
    if (!parsed.success) {
      console.error(`unknown option ${args[0]}; usage: adopt-billing`);
      return 2;
    }
    return withCliDatabase(async ({ db }) => {
      await prepareDatabase(db, { adoptBilling: false });
      const result = await adoptBillingOnce(db);
      if (result) {
        console.log(describeAdoption(result));
        return 0;
      }
      const done = await adoptionWatermark(db);
      console.log(`billing already adopted on ${done?.adoptedAt ?? "an earlier start"}: nothing changed`);
      return 0;
    });
  },
};
