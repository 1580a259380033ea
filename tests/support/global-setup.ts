/**
 * One embedded PostgreSQL for the whole integration run. A template database is migrated
 * once; every test file gets its own copy (CREATE DATABASE … TEMPLATE), so files never
 * share rows and can run in parallel.
 */
import fs from "node:fs";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { createDb } from "../../db/database";
import { startEmbedded, type EmbeddedDatabase } from "../../db/embedded";
import { prepareDatabase } from "../../db/setup";

declare module "vitest" {
  export interface ProvidedContext {
    pgServerUrl: string;
    pgTemplate: string;
    pgDataDir: string;
  }
}

export const TEMPLATE = "tb_template";
let embedded: EmbeddedDatabase | undefined;

export default async function setup(project: TestProject) {
  const dataDir = path.resolve(".data-test", `pg-${process.pid}`);
  fs.rmSync(dataDir, { recursive: true, force: true });
  embedded = await startEmbedded({ dataDir, durability: "none" });
  const admin = createDb(embedded.url("postgres"), 1);
  await admin.pool.query(`CREATE DATABASE ${TEMPLATE}`);
  await admin.db.destroy();
  const template = createDb(embedded.url(TEMPLATE), 1);
  await prepareDatabase(template.db);
  await template.db.destroy();
  project.provide("pgServerUrl", embedded.url("postgres"));
  project.provide("pgTemplate", TEMPLATE);
  project.provide("pgDataDir", dataDir);
  return async () => {
    await embedded?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
}
