import type { CliCommand } from "./types";

export const command: CliCommand = {
  summary: "rollup (not built yet)",
  run: async () => {
    console.error("rollup is not built yet");
    return 1;
  },
};
