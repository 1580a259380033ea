import { describe, expect, it } from "vitest";
import { apiFailure } from "~/lib/api-errors.server";
import { isDatabaseUnavailable } from "~/lib/db.server";

// What pg and PostgreSQL raise when the server is gone, as the pages and both APIs meet them.
const lostConnections: [string, unknown][] = [
  ["a held client after the server went away", new Error("Client has encountered a connection error and is not queryable")],
  ["a refused connection", Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" })],
  ["an unknown host", Object.assign(new Error("getaddrinfo ENOTFOUND db"), { code: "ENOTFOUND" })],
  ["an administrator shutdown", Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" })],
  ["a protocol-level connection failure", Object.assign(new Error("protocol violation"), { code: "08P01" })],
];

describe("one definition of 'the database is unavailable'", () => {
  it.each(lostConnections)("pages and the ledger and balance APIs agree on %s: 503 with Retry-After", async (_, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
    const answer = apiFailure(error);
    expect(answer.status).toBe(503);
    expect(answer.headers.get("retry-after")).toBe("5");
    expect(JSON.stringify(await answer.json())).not.toMatch(/queryable|ECONN|57P01/);
  });

  it("a query bug stays a 500 without its text", async () => {
    const bug = Object.assign(new Error('column "nope" does not exist'), { code: "42703" });
    expect(isDatabaseUnavailable(bug)).toBe(false);
    const answer = apiFailure(bug);
    expect(answer.status).toBe(500);
    expect(JSON.stringify(await answer.json())).not.toMatch(/nope/);
  });
});
