import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { startJobs, type Job } from "../../server/jobs";

// The runner opens a pool lazily; these jobs never query it, so no server is needed.
const UNUSED_DATABASE = "postgres://nobody:none@127.0.0.1:1/none";
const FIRST_RUN_MS = 1_000;

/** Runs what a backlog schedules "at once" (Node makes a 0 ms timer 1 ms). */
async function runBacklog(): Promise<void> {
  for (let i = 0; i < 10; i += 1) await vi.advanceTimersByTimeAsync(1);
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

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
    await vi.advanceTimersByTimeAsync(FIRST_RUN_MS - 1);
    expect(runs).toHaveLength(0);
    await runBacklog();
    expect(runs).toHaveLength(4);
    expect(runs[3]! - runs[0]!).toBeLessThanOrEqual(3);
    await vi.advanceTimersByTimeAsync(job.intervalMs - 20);
    expect(runs).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(20);
    expect(runs).toHaveLength(5);
    expect(runs[4]! - runs[3]!).toBe(job.intervalMs);
    await runner.stop();
    expect(lines[0]).toMatch(/^job drain: run 1 \(\d+ ms\)$/);
  });

  it("logs a failed run and keeps the runner alive for the next interval", async () => {
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
    await vi.advanceTimersByTimeAsync(FIRST_RUN_MS);
    expect(calls).toBe(1);
    expect(lines).toEqual(["job flaky failed: boom"]);
    await vi.advanceTimersByTimeAsync(job.intervalMs);
    expect(calls).toBe(2);
    await runner.stop();
  });

  it("stops: no run starts after stop()", async () => {
    let calls = 0;
    const job: Job = { name: "idle", intervalMs: 500, run: async () => void (calls += 1) };
    const runner = startJobs(UNUSED_DATABASE, () => undefined, [job]);
    await runner.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toBe(0);
  });
});
