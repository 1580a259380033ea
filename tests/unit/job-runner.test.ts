import { describe, expect, it } from "vitest";
import { startJobs, type Job } from "../../server/jobs";

// The runner opens a pool lazily; these jobs never query it, so no server is needed.
const UNUSED_DATABASE = "postgres://nobody:none@127.0.0.1:1/none";

describe("background job runner", () => {
  it("runs a job again at once while it reports a backlog, then waits its interval", async () => {
    const runs: number[] = [];
    const job: Job = {
      name: "drain",
      intervalMs: 60_000,
      run: async () => {
        runs.push(Date.now());
        return { summary: `run ${runs.length}`, backlog: runs.length < 4 };
      },
    };
    const lines: string[] = [];
    const runner = startJobs(UNUSED_DATABASE, (line) => lines.push(line), [job]);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    await runner.stop();
    expect(runs).toHaveLength(4);
    expect(runs[3]! - runs[0]!).toBeLessThan(500);
    expect(lines[0]).toMatch(/^job drain: run 1 \(\d+ ms\)$/);
  });

  it("logs a failed run and keeps the runner alive", async () => {
    let calls = 0;
    const job: Job = {
      name: "flaky",
      intervalMs: 60_000,
      run: async () => {
        calls += 1;
        throw new Error("boom");
      },
    };
    const lines: string[] = [];
    const runner = startJobs(UNUSED_DATABASE, (line) => lines.push(line), [job]);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await runner.stop();
    expect(calls).toBe(1);
    expect(lines).toEqual(["job flaky failed: boom"]);
  });
});
