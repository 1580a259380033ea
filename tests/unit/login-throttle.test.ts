import { describe, expect, it } from "vitest";
import { describeWait, FREE_FAILED_LOGINS, loginDelaySeconds, MAX_LOGIN_DELAY_SECONDS } from "~/domain/login-throttle";

describe("login delays", () => {
  it("let the first failures through, then double from 1 s up to the cap", () => {
    const delays = Array.from({ length: FREE_FAILED_LOGINS + 4 }, (_, i) => loginDelaySeconds(i + 1));
    expect(delays).toEqual([...Array(FREE_FAILED_LOGINS - 1).fill(0), 1, 2, 4, 8, 16]);
    expect(loginDelaySeconds(FREE_FAILED_LOGINS + 40)).toBe(MAX_LOGIN_DELAY_SECONDS);
  });

  it("are described in seconds, then minutes", () => {
    expect([1, 2, 90, 900].map(describeWait)).toEqual(["1 second", "2 seconds", "90 seconds", "15 minutes"]);
  });
});
