import type { CliCommand } from "./types";

export const command: CliCommand = {
  summary: "import-usage (not built yet)",
  run: async () => {
    console.error("import-usage is not built yet");
    return 1;
  },
};
