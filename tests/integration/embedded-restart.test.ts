import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { processAlive, startEmbedded } from "../../db/embedded";

/**
 * `npm start` after a run that was killed: the embedded server's data is reused, an orphaned
 * postgres is stopped, a stale postmaster.pid is removed.
 */
const dir = path.resolve(".data-test", `restart-${process.pid}`);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const CHILD = `
import { startEmbedded } from "./db/embedded.ts";
const db = await startEmbedded({ dataDir: process.argv[2], durability: "none" });
const pg = (await import("pg")).default;
const client = new pg.Client(db.url("tokenboard"));
await client.connect();
await client.query("CREATE TABLE IF NOT EXISTS kept (n int)");
await client.query("INSERT INTO kept VALUES (42)");
await client.end();
console.log("ready");
setInterval(() => {}, 1000);
`;

async function startAndKill(): Promise<void> {
  const script = path.join(dir, "child.mts");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(script, CHILD.replace("./db/embedded.ts", path.resolve("db/embedded.ts")));
  const child = spawn(process.execPath, ["--import", "tsx", script, path.join(dir, "pg")], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => (chunk.toString().includes("ready") ? resolve() : undefined));
    child.on("exit", (code) => reject(new Error(`child exited with ${code}`)));
  });
  child.kill("SIGKILL");
  await new Promise((resolve) => child.once("exit", resolve));
}

function postmasterPid(): number {
  return Number(fs.readFileSync(path.join(dir, "pg", "postmaster.pid"), "utf8").split("\n")[0]);
}

describe("embedded PostgreSQL after a killed run", () => {
  it("stops the orphaned server, starts again on the same data and keeps its rows", async () => {
    await startAndKill();
    const orphan = postmasterPid();
    expect(processAlive(orphan)).toBe(true);
    const db = await startEmbedded({ dataDir: path.join(dir, "pg"), durability: "none" });
    try {
      expect(db.created).toBe(false);
      expect(processAlive(orphan)).toBe(false);
      const client = new pg.Client(db.url("tokenboard"));
      await client.connect();
      const { rows } = await client.query<{ n: number }>("SELECT n FROM kept");
      await client.end();
      expect(rows).toEqual([{ n: 42 }]);
    } finally {
      await db.stop();
    }
  });

  it("removes a stale postmaster.pid whose process is gone", async () => {
    fs.writeFileSync(path.join(dir, "pg", "postmaster.pid"), "999999\n/nowhere\n0\n5432\n");
    const db = await startEmbedded({ dataDir: path.join(dir, "pg"), durability: "none" });
    try {
      expect(postmasterPid()).not.toBe(999999);
    } finally {
      await db.stop();
    }
    expect(fs.existsSync(path.join(dir, "pg", "postmaster.pid"))).toBe(false);
  });
});
