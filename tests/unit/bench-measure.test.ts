import { describe, expect, it } from "vitest";
import { cpuDelta } from "../../bench/measure";

// Maps as postgresCpu reads them: the postmaster (its own CPU plus its count for exited
// children) and every live child, in CPU seconds.
const POSTMASTER = 100;

describe("cpuDelta", () => {
  it("counts what each process used between the readings, whether it stayed, started or ended", () => {
    const before = new Map([
      [POSTMASTER, 10],
      [201, 5], // ends in between, after 3 s more: 8 s in all move into the postmaster's count
      [202, 3], // stays, 1 s more
    ]);
    const after = new Map([
      [POSTMASTER, 10 + 8],
      [202, 4],
      [203, 2], // started in between
    ]);
    expect(cpuDelta(before, after)).toBe(3 + 1 + 2);
  });

  it("adds a process that started and ended in between through the postmaster's count", () => {
    expect(cpuDelta(new Map([[POSTMASTER, 10]]), new Map([[POSTMASTER, 16]]))).toBe(6);
  });

  it("answers null when either reading is missing (no /proc)", () => {
    expect(cpuDelta(null, new Map())).toBeNull();
    expect(cpuDelta(new Map(), null)).toBeNull();
  });
});
