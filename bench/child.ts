/**
 * Load clients in a process of their own, as real clients would be: a scenario forks its own
 * module with an environment flag set, sends it one job, and gets the result back over IPC.
 * The server under test (the bench's process), its pool and PostgreSQL get the rest of the
 * machine, and the clients' CPU is measured apart from the server's.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";

/** Runs one job in a forked copy of the module at `moduleUrl` (its import.meta.url), with `flag` set. */
export async function runInChild<Job, Result>(moduleUrl: string, flag: string, job: Job): Promise<Result> {
  // Under tsx the exec arguments carry its loader; a CPU profile of the bench stays the server's.
  const execArgv = process.execArgv.filter((arg) => !arg.startsWith("--cpu-prof"));
  const child = fork(fileURLToPath(moduleUrl), [], { env: { ...process.env, [flag]: "1" }, execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  try {
    return await new Promise<Result>((resolve, reject) => {
      child.once("message", (message) => resolve(message as Result));
      child.once("error", reject);
      child.once("exit", (code) => reject(new Error(`bench client (${flag}) exited with ${code} before reporting`)));
      child.send(job as object);
    });
  } finally {
    child.kill();
  }
}

/** In the forked copy (when `flag` is set): does the parent's one job and sends back its result. */
export function serveChildJob<Job, Result>(flag: string, work: (job: Job) => Promise<Result>): void {
  if (!process.env[flag] || !process.send) return;
  process.once("message", (job) => {
    work(job as Job).then(
      (result) => process.send?.(result, () => process.exit(0)),
      (error: unknown) => {
        console.error(`bench client (${flag}):`, error);
        process.exit(1);
      },
    );
  });
}
