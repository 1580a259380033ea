// `npm test`: typecheck, lint, unit + integration (Vitest, real embedded PostgreSQL), build,
// e2e (Playwright in Debian's Chromium). Every step runs even when an earlier one fails, so one
// run shows everything; the last line is "N passed, N failed" and the exit code is non-zero on
// any failure.
import { spawnSync } from "node:child_process";
import fs from "node:fs";

const results = { passed: 0, failed: 0, skipped: 0 };
const failures = [];
fs.mkdirSync("test-results", { recursive: true });

function run(label, command, args, env = {}) {
  const started = Date.now();
  console.log(`\n=== ${label}: ${command} ${args.join(" ")}`);
  const result = spawnSync(command, args, { stdio: "inherit", env: { ...process.env, ...env } });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const ok = result.status === 0;
  console.log(`=== ${label}: ${ok ? "ok" : `FAILED (exit ${result.status ?? result.signal})`} in ${seconds} s`);
  return ok;
}

function step(label, command, args) {
  if (run(label, command, args)) results.passed += 1;
  else {
    results.failed += 1;
    failures.push(label);
  }
}

function countJson(label, file, ok, count) {
  if (!fs.existsSync(file)) {
    results.failed += 1;
    failures.push(`${label} (no report written)`);
    return;
  }
  const counts = count(JSON.parse(fs.readFileSync(file, "utf8")));
  results.passed += counts.passed;
  results.failed += counts.failed;
  results.skipped += counts.skipped;
  if (counts.failed > 0) failures.push(`${label}: ${counts.failed} failed`);
  else if (!ok) {
    results.failed += 1;
    failures.push(`${label} (runner failed outside the tests)`);
  }
}

const npx = "npx";
step("typecheck", npx, ["tsc", "--noEmit"]);
step("lint", npx, ["eslint", "--max-warnings", "0", "."]);

fs.rmSync("test-results/vitest.json", { force: true });
const vitestOk = run("unit + integration", npx, ["vitest", "run", "--reporter=default", "--reporter=json", "--outputFile.json=test-results/vitest.json"]);
countJson("unit + integration", "test-results/vitest.json", vitestOk, (r) => ({
  passed: r.numPassedTests ?? 0,
  failed: r.numFailedTests ?? 0,
  skipped: (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0),
}));

const chromiumOk = run("chromium", "node", ["scripts/ensure-chromium.mjs"]);
const buildOk = run("build", "npm", ["run", "build", "--silent"]);
if (!buildOk) {
  results.failed += 1;
  failures.push("build");
}
if (chromiumOk && buildOk) {
  fs.rmSync("test-results/e2e.json", { force: true });
  const e2eOk = run("e2e", npx, ["playwright", "test"], { CI: process.env.CI ?? "1" });
  countJson("e2e", "test-results/e2e.json", e2eOk, (r) => ({
    passed: r.stats?.expected ?? 0,
    failed: (r.stats?.unexpected ?? 0) + (r.stats?.flaky ?? 0),
    skipped: r.stats?.skipped ?? 0,
  }));
} else {
  results.failed += 1;
  failures.push(chromiumOk ? "e2e (not run: build failed)" : "e2e (not run: Chromium missing)");
}

console.log("");
if (failures.length) console.log(`failures: ${failures.join("; ")}`);
console.log(`${results.passed} passed, ${results.failed} failed${results.skipped ? `, ${results.skipped} skipped` : ""}`);
process.exit(results.failed > 0 ? 1 : 0);
