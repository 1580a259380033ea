import { afterAll, describe, expect, it } from "vitest";
import { createDb } from "../../db/database";
import { freePort } from "../../db/embedded";
import { requireApiAccess, requireStaff } from "../../app/lib/auth.server";

/** With no database listening, pages and the API answer 503 + Retry-After, never a driver error. */
const handle = createDb(`postgres://postgres:x@127.0.0.1:${await freePort()}/none`, 1);
globalThis.__tokenboardDb = handle;
afterAll(async () => {
  globalThis.__tokenboardDb = undefined;
  await handle.db.destroy();
});

async function thrownBy(promise: Promise<unknown>): Promise<Response> {
  try {
    await promise;
  } catch (thrown) {
    if (thrown instanceof Response) return thrown;
    throw thrown;
  }
  throw new Error("expected a Response to be thrown");
}

describe("when the database is unreachable", () => {
  it("a page answers 503 with Retry-After and a message that says what to do", async () => {
    const response = await thrownBy(requireStaff(new Request("http://localhost/", { headers: { cookie: "tb_session=abc" } })));
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("5");
    const body = (await response.json()) as { message: string };
    expect(body.message).toBe("The database is not reachable right now. Try again in a few seconds.");
    expect(JSON.stringify(body)).not.toMatch(/ECONNREFUSED|stack|at /);
  });

  it("the API answers 503 with Retry-After", async () => {
    const response = await thrownBy(requireApiAccess(new Request("http://localhost/api/v1/usage", { headers: { authorization: "Bearer k" } }), "ingest"));
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("5");
  });
});
