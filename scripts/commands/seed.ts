import type { CliCommand } from "./types";

export const command: CliCommand = {
  summary: "seed (not built yet)",
  run: async () => {
    console.error("seed is not built yet");
    return 1;
  },
};
