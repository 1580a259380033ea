import { describe, expect, it } from "vitest";
import { parseLoadOptions } from "../../bench/scenarios/load-options";

describe("the load bench's environment", () => {
  it("defaults to 60 s, 5 reads a second, events stamped within the last minute and at most 5,000,000 events a run", () => {
    expect(parseLoadOptions({})).toEqual({ BENCH_LOAD_SECONDS: 60, BENCH_LOAD_READS: 5, BENCH_LOAD_STAMP_SECONDS: 60, BENCH_LOAD_MAX_EVENTS: 5_000_000 });
  });

  it("reads the values given, empty ones as unset", () => {
    expect(parseLoadOptions({ BENCH_LOAD_SECONDS: "30", BENCH_LOAD_READS: "0.5", BENCH_LOAD_USERS: "1000", BENCH_LOAD_STAMP_SECONDS: "86400", BENCH_LOAD_MAX_EVENTS: "20000", BENCH_LOAD_OTHER: "x" })).toEqual({
      BENCH_LOAD_SECONDS: 30,
      BENCH_LOAD_READS: 0.5,
      BENCH_LOAD_USERS: 1000,
      BENCH_LOAD_STAMP_SECONDS: 86_400,
      BENCH_LOAD_MAX_EVENTS: 20_000,
    });
    expect(parseLoadOptions({ BENCH_LOAD_USERS: "" }).BENCH_LOAD_USERS).toBeUndefined();
  });

  it.each([
    ["BENCH_LOAD_SECONDS", "abc"],
    ["BENCH_LOAD_SECONDS", "4"],
    ["BENCH_LOAD_SECONDS", "301"],
    ["BENCH_LOAD_READS", "0"],
    ["BENCH_LOAD_USERS", "1.5"],
    ["BENCH_LOAD_STAMP_SECONDS", "0"],
    ["BENCH_LOAD_MAX_EVENTS", "999"],
    ["BENCH_LOAD_MAX_EVENTS", "1e9"],
  ])("refuses %s=%s, naming it", (name, value) => {
    expect(() => parseLoadOptions({ [name]: value })).toThrow(new RegExp(`^${name}: `));
  });
});
