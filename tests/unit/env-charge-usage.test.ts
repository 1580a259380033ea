import { afterEach, describe, expect, it, vi } from "vitest";

/** TOKENBOARD_CHARGE_USAGE: on by default, off on request, anything else stops the process naming it. */
async function freshEnv(value: string | undefined) {
  vi.resetModules();
  vi.stubEnv("TOKENBOARD_CHARGE_USAGE", value as string);
  if (value === undefined) delete process.env.TOKENBOARD_CHARGE_USAGE;
  return import("~/lib/env.server");
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("TOKENBOARD_CHARGE_USAGE", () => {
  it("is on by default and off when asked", async () => {
    expect((await freshEnv(undefined)).getEnv().TOKENBOARD_CHARGE_USAGE).toBe("on");
    expect((await freshEnv("off")).getEnv().TOKENBOARD_CHARGE_USAGE).toBe("off");
  });

  it("refuses another value, naming the variable", async () => {
    const { getEnv } = await freshEnv("yes");
    expect(() => getEnv()).toThrow(/TOKENBOARD_CHARGE_USAGE: must be "on" or "off"/);
  });
});
