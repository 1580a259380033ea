import { sql } from "kysely";
import { afterAll, beforeAll, expect, it } from "vitest";
import { embeddedSharedBuffersMb } from "../../db/embedded";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t.drop());

it("the embedded server runs with the shared_buffers sized from this machine's memory", async () => {
  const result = await sql<{ mb: number }>`SELECT (setting::bigint * 8192 / 1048576)::int AS mb FROM pg_settings WHERE name = 'shared_buffers'`.execute(t.db);
  expect(result.rows[0]?.mb).toBe(embeddedSharedBuffersMb());
});
