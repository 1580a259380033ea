import type { CliCommand } from "./types";

export const command: CliCommand = {
  summary: "export (not built yet)",
  run: async () => {
    console.error("export is not built yet");
    return 1;
  },
};
