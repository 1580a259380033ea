import { z } from "zod";
import { createStaff } from "../../app/models/staff.server";
import { withCliDatabase } from "./database";
import type { CliCommand } from "./types";

const argsSchema = z.object({
  email: z.string().email("--email must be an email address"),
  role: z.enum(["admin", "support", "analyst"], { errorMap: () => ({ message: "--role must be admin, support or analyst" }) }),
  password: z.string().min(12, "--password must be at least 12 characters"),
});

export const command: CliCommand = {
  summary: "create a staff account: --email E --role admin|support|analyst --password P",
  run: async (args) => {
    const options: Record<string, string> = {};
    for (let i = 0; i < args.length; i += 2) options[(args[i] ?? "").replace(/^--/, "")] = args[i + 1] ?? "";
    const parsed = argsSchema.safeParse(options);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) console.error(`create-staff: ${issue.message}`);
      return 2;
    }
    return withCliDatabase(async ({ db }) => {
      const staff = await createStaff(db, { id: null, label: "cli" }, parsed.data);
      console.log(`created ${staff.role} ${staff.email}`);
      return 0;
    });
  },
};
