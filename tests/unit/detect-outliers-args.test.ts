import { describe, expect, it } from "vitest";
import { parseDetectArgs } from "../../scripts/commands/detect-outliers";

describe("detect-outliers options", () => {
  it("runs incrementally without options", () => {
    expect(parseDetectArgs([])).toEqual({ ok: true, full: false });
  });

  it("reads --full and --since as a UTC date or an ISO instant", () => {
    expect(parseDetectArgs(["--full"])).toEqual({ ok: true, full: true });
    expect(parseDetectArgs(["--since", "2026-01-02"])).toEqual({ ok: true, full: false, since: new Date("2026-01-02T00:00:00Z") });
    expect(parseDetectArgs(["--since=2026-01-02T10:00:00+02:00"])).toMatchObject({ ok: true, since: new Date("2026-01-02T08:00:00Z") });
  });

  it("names the bad option", () => {
    expect(parseDetectArgs(["--since", "yesterday"])).toMatchObject({ ok: false, message: expect.stringContaining("--since must be a date") });
    expect(parseDetectArgs(["--since", "2026-02-30"])).toMatchObject({ ok: false, message: expect.stringContaining("--since") });
    expect(parseDetectArgs(["--fast"])).toMatchObject({ ok: false, message: expect.stringContaining('unknown option "--fast"') });
    expect(parseDetectArgs(["--full", "--since", "2026-01-01"])).toMatchObject({ ok: false, message: expect.stringContaining("cannot be combined") });
  });
});
