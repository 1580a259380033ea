import type { CliCommand } from "./types";

export const command: CliCommand = {
  summary: "detect-outliers (not built yet)",
  run: async () => {
    console.error("detect-outliers is not built yet");
    return 1;
  },
};
