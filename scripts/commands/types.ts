export interface CliCommand {
  /** One line for the help text. */
  summary: string;
  run: (args: string[]) => Promise<number>;
}
