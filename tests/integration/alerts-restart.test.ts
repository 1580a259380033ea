import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDb } from "../../db/database";
import { freePort, startEmbedded, type EmbeddedDatabase } from "../../db/embedded";
import { prepareDatabase } from "../../db/setup";
import { deliverDueAlerts, enqueueAlert } from "../../app/features/alerts/outbox.server";
import { forgetEnv } from "../../app/lib/env.server";

/**
 * The database stops while alerts are being delivered: nothing queued is lost, no alert gets a
 * second id, and once it is back every alert reaches the receiver (a delivery whose success
 * could not be recorded is sent again under the same id, which is what receivers dedupe on).
 */
const dir = path.resolve(".data-test", `alerts-restart-${process.pid}`);
let server: EmbeddedDatabase;
let port: number;
let receiver: http.Server;
const received: string[] = [];

beforeAll(async () => {
  port = await freePort();
  server = await startEmbedded({ dataDir: dir, port, durability: "none" });
  const setup = createDb(server.url("tokenboard"), 2);
  await prepareDatabase(setup.db);
  await setup.db.destroy();
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    // Slow enough that the database goes away while these requests are in flight.
    req.on("end", () => setTimeout(() => {
      received.push((JSON.parse(body) as { id: string }).id);
      res.writeHead(200).end();
    }, 400));
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  process.env.TOKENBOARD_ALERT_WEBHOOK_URL = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  forgetEnv();
});

afterAll(async () => {
  delete process.env.TOKENBOARD_ALERT_WEBHOOK_URL;
  forgetEnv();
  await new Promise((resolve) => receiver.close(resolve));
  await server.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("the outbox across a database restart", () => {
  it("loses no alert and gives none a second id", async () => {
    const { db } = createDb(server.url("tokenboard"), 4);
    try {
      const ids: string[] = [];
      for (let i = 0; i < 20; i += 1) {
        const id = await enqueueAlert(db, { type: "ingest.silent", title: "Ingest silent", text: `alert ${i}` });
        ids.push(id!);
      }
      // Ten are delivered and recorded before the stop.
      expect(await deliverDueAlerts(db, { limit: 10 })).toMatchObject({ sent: 10 });

      // The other ten are in flight when the database stops: their outcome cannot be written.
      const inFlight = deliverDueAlerts(db, { limit: 10 }).then(() => "finished", () => "failed");
      await new Promise((r) => setTimeout(r, 100));
      await server.stop();
      expect(await inFlight).toBe("failed");
      server = await startEmbedded({ dataDir: dir, port, durability: "none" });

      // After the claim lease runs out (shortened here) they are sent again under the same ids.
      for (let i = 0; i < 40; i += 1) {
        const ok = await db.updateTable("alert_outbox").set({ next_attempt_at: new Date() }).where("status", "in", ["pending", "failed"]).execute().then(() => true, () => false);
        if (ok) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(await deliverDueAlerts(db)).toMatchObject({ sent: 10, failed: 0 });

      const rows = await db.selectFrom("alert_outbox").select(["id", "status"]).execute();
      expect(rows).toHaveLength(20);
      expect(new Set(rows.map((r) => r.id))).toEqual(new Set(ids));
      expect(rows.every((r) => r.status === "sent")).toBe(true);
      expect(new Set(received)).toEqual(new Set(ids));
      // Only the ten whose success was lost with the database arrive twice, with the same id.
      expect(received).toHaveLength(30);
    } finally {
      await db.destroy();
    }
  });
});
