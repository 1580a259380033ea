import { migrateDown } from "../../db/migrate";
import { withCliDatabase } from "./database";
import type { CliCommand } from "./types";

export const command: CliCommand = {
  summary: "roll back the newest migration (never drops the seed app's tables or rows)",
  run: () =>
    withCliDatabase(async ({ db }) => {
      const done = await migrateDown(db);
      console.log(done.length ? `rolled back: ${done.join(", ")}` : "nothing to roll back");
      return 0;
    }),
};
