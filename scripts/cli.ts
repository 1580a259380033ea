/**
 * `npm run cli -- <command> [options]`. Each command lives in scripts/commands/<name>.ts,
 * parses its own arguments with zod, prints progress for long work, and returns an exit code.
 */
import pino from "pino";
import { configureLogging, logger } from "../app/lib/logger.server";
import type { CliCommand } from "./commands/types";

// A command's output is on stdout (export writes CSV there); diagnostics go to stderr as JSON lines.
configureLogging(pino.destination(2));

const COMMANDS: Record<string, () => Promise<{ command: CliCommand }>> = {
  migrate: () => import("./commands/migrate"),
  "migrate-down": () => import("./commands/migrate-down"),
  "check-action-types": () => import("./commands/check-action-types"),
  seed: () => import("./commands/seed"),
  "import-usage": () => import("./commands/import-usage"),
  export: () => import("./commands/export"),
  "export-balances": () => import("./commands/export-balances"),
  rollup: () => import("./commands/rollup"),
  "adopt-billing": () => import("./commands/adopt-billing"),
  "detect-outliers": () => import("./commands/detect-outliers"),
  "create-staff": () => import("./commands/create-staff"),
};

function usage(): string {
  return `usage: npm run cli -- <command> [options]\ncommands: ${Object.keys(COMMANDS).join(", ")}\nDATABASE_URL selects the database (default: the embedded one under .data/, which must be running or is started for the command).`;
}

async function main(): Promise<number> {
  const [name, ...args] = process.argv.slice(2);
  if (!name || name === "--help" || name === "help") {
    console.log(usage());
    return name ? 0 : 2;
  }
  const load = COMMANDS[name];
  if (!load) {
    console.error(`unknown command ${JSON.stringify(name)}\n${usage()}`);
    return 2;
  }
  const { command } = await load();
  return command.run(args);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    logger.debug({ err: error }, "command failed");
    process.exit(1);
  },
);
