import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { createTokenboardClient, newEventId, TokenboardError, type TokenUsageEvent } from "../../client/track-token-usage";
import { UUID_V7, uuidV7Millis } from "../support/uuid";

const USER = "6f1c2f1e-6b1a-4a55-9c61-1a1a1a1a1a1a";

function usage(overrides: Partial<TokenUsageEvent> = {}): TokenUsageEvent {
  return { user_id: USER, action_type: "chat_conversation", model_used: "gpt-4o", tokens_used: 3000, ...overrides };
}

interface Call {
  url: string;
  headers: Headers;
  events: Record<string, unknown>[];
}

type Reply = { status: number; body?: unknown; headers?: Record<string, string> } | Error;

/** A fetch that records every request and answers from a script (last reply repeats). */
function scriptedFetch(replies: Reply[] | ((call: Call) => Reply)) {
  const calls: Call[] = [];
  const fetchImpl = (async (url: string, init: RequestInit) => {
    const call = { url, headers: new Headers(init.headers), events: (JSON.parse(init.body as string) as { events: Record<string, unknown>[] }).events };
    calls.push(call);
    const reply = typeof replies === "function" ? replies(call) : (replies[calls.length - 1] ?? replies[replies.length - 1]!);
    if (reply instanceof Error) throw reply;
    return new Response(JSON.stringify(reply.body ?? { accepted: call.events.length, duplicates: 0, errors: [] }), {
      status: reply.status,
      headers: { "content-type": "application/json", ...reply.headers },
    });
  }) as unknown as typeof fetch;
  return { calls, fetchImpl };
}

function client(fetchImpl: typeof fetch, sleeps: number[] = [], retries?: number) {
  return createTokenboardClient({
    baseUrl: "https://tokenboard.test/",
    ingestKey: "key-123",
    fetch: fetchImpl,
    retries,
    sleep: async (ms) => void sleeps.push(ms),
  });
}

describe("trackTokenUsage", () => {
  it("posts one event to /api/v1/usage with the bearer key and a JSON body", async () => {
    const { calls, fetchImpl } = scriptedFetch([{ status: 200 }]);
    const result = await client(fetchImpl).trackTokenUsage(usage({ created_at: new Date("2025-03-01T10:00:00Z") }));
    expect(result).toEqual({ accepted: 1, duplicates: 0, errors: [] });
    expect(calls).toHaveLength(1);
    expect(calls[0]!.url).toBe("https://tokenboard.test/api/v1/usage");
    expect(calls[0]!.headers.get("authorization")).toBe("Bearer key-123");
    expect(calls[0]!.headers.get("content-type")).toBe("application/json");
    expect(calls[0]!.events[0]).toMatchObject({ user_id: USER, tokens_used: 3000, created_at: "2025-03-01T10:00:00.000Z" });
  });

  it("assigns a UUIDv7 event_id where missing, keeps a given one, and leaves the caller's objects alone", async () => {
    const { calls, fetchImpl } = scriptedFetch([{ status: 200 }]);
    const events = [usage(), usage({ event_id: "mine-1" })];
    await client(fetchImpl).trackTokenUsage(events);
    const sent = calls[0]!.events;
    expect(sent[0]!.event_id).toMatch(UUID_V7);
    expect(sent[1]!.event_id).toBe("mine-1");
    expect(events[0]!.event_id).toBeUndefined();
  });

  it("makes event ids that carry their time and sort in the order they were made", async () => {
    const before = Date.now();
    const early = Array.from({ length: 500 }, () => newEventId());
    await new Promise((resolve) => setTimeout(resolve, 5));
    const late = Array.from({ length: 500 }, () => newEventId());
    const after = Date.now();
    for (const id of [...early, ...late]) {
      expect(id).toMatch(UUID_V7);
      const ms = uuidV7Millis(id);
      expect(ms).toBeGreaterThanOrEqual(before);
      expect(ms).toBeLessThanOrEqual(after);
    }
    // Ids of different milliseconds compare as their times; within one they are random.
    expect(early.every((id) => late.every((later) => id < later))).toBe(true);
    expect(new Set([...early, ...late]).size).toBe(1000);
  });

  it("splits more than 1000 events into batches and sums the answers", async () => {
    const { calls, fetchImpl } = scriptedFetch((call) => ({ status: 200, body: { accepted: call.events.length - 1, duplicates: 1, errors: [] } }));
    const result = await client(fetchImpl).trackTokenUsage(Array.from({ length: 2500 }, () => usage()));
    expect(calls.map((c) => c.events.length)).toEqual([1000, 1000, 500]);
    expect(result).toEqual({ accepted: 2497, duplicates: 3, errors: [] });
  });

  it("retries a 503 with the same event_ids, so a retry cannot store an event twice", async () => {
    const sleeps: number[] = [];
    const { calls, fetchImpl } = scriptedFetch([{ status: 503, headers: { "retry-after": "2" } }, { status: 200 }]);
    const result = await client(fetchImpl, sleeps).trackTokenUsage([usage(), usage()]);
    expect(result.accepted).toBe(2);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.events.map((e) => e.event_id)).toEqual(calls[0]!.events.map((e) => e.event_id));
    expect(sleeps).toEqual([2000]);
  });

  it("retries network failures with growing, bounded delays and then gives up with status 0", async () => {
    const sleeps: number[] = [];
    const { calls, fetchImpl } = scriptedFetch([new TypeError("fetch failed")]);
    const error = await client(fetchImpl, sleeps, 3).trackTokenUsage(usage()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TokenboardError);
    expect((error as TokenboardError).status).toBe(0);
    expect((error as TokenboardError).message).toMatch(/unreachable after 4 attempts: fetch failed/);
    expect(calls).toHaveLength(4);
    expect(sleeps).toHaveLength(3);
    // 250 ms doubling, jittered to between half and all of it.
    sleeps.forEach((ms, attempt) => {
      expect(ms).toBeGreaterThanOrEqual(125 * 2 ** attempt);
      expect(ms).toBeLessThanOrEqual(250 * 2 ** attempt);
    });
  });

  it.each([400, 401, 403, 413, 415, 422])("never retries a %i", async (status) => {
    const { calls, fetchImpl } = scriptedFetch([{ status, body: { accepted: 0, duplicates: 0, errors: [], message: "no" } }]);
    const error = await client(fetchImpl).trackTokenUsage(usage()).catch((e: unknown) => e);
    expect(calls).toHaveLength(1);
    expect(error).toMatchObject({ status, message: "no" });
  });

  it("reports a refused later batch with errors indexed into the caller's array and what was stored before", async () => {
    const { fetchImpl } = scriptedFetch([
      { status: 200 },
      { status: 422, body: { accepted: 0, duplicates: 0, errors: [{ index: 5, message: "events[5].tokens_used: must be an integer ≥ 0" }], message: "1 error(s); nothing was stored" } },
    ]);
    const error = (await client(fetchImpl).trackTokenUsage(Array.from({ length: 1200 }, () => usage())).catch((e: unknown) => e)) as TokenboardError;
    expect(error).toBeInstanceOf(TokenboardError);
    expect(error.status).toBe(422);
    expect(error.errors).toEqual([{ index: 1005, message: "events[5].tokens_used: must be an integer ≥ 0" }]);
    expect(error.stored).toEqual({ accepted: 1000, duplicates: 0, errors: [] });
  });

  it("works against a real HTTP server that fails once and then accepts", async () => {
    const bodies: string[] = [];
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        bodies.push(body);
        const events = (JSON.parse(body) as { events: unknown[] }).events;
        res.writeHead(bodies.length === 1 ? 503 : 200, { "content-type": "application/json", "retry-after": "0" });
        res.end(JSON.stringify(bodies.length === 1 ? { accepted: 0, duplicates: 0, errors: [] } : { accepted: events.length, duplicates: 0, errors: [] }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const real = createTokenboardClient({ baseUrl: `http://127.0.0.1:${port}`, ingestKey: "k", retryDelayMs: 1 });
      const result = await real.trackTokenUsage([usage(), usage()]);
      expect(result).toEqual({ accepted: 2, duplicates: 0, errors: [] });
      expect(bodies).toHaveLength(2);
      expect(bodies[1]).toBe(bodies[0]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
