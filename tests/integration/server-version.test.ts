import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertServerVersion, MIN_SERVER_VERSION } from "../../db/setup";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t.drop());

describe("server version check", () => {
  it("accepts the embedded server", async () => {
    await expect(assertServerVersion(t.db)).resolves.toBeUndefined();
    expect(MIN_SERVER_VERSION).toBe(150_000);
  });

  it("refuses an older server with what to do, before any migration", async () => {
    await expect(assertServerVersion(t.db, 990_000)).rejects.toThrow(/needs PostgreSQL 99 or newer; DATABASE_URL points to PostgreSQL \d+.*Upgrade the server, or unset DATABASE_URL/);
  });
});
