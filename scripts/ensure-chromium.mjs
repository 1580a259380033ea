// The e2e tests drive Debian's Chromium (Playwright's own browser download cannot work on
// this network). Installs it when missing and we are root; otherwise says how, in one line.
import { execSync } from "node:child_process";
import fs from "node:fs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

if (fs.existsSync(CHROMIUM)) process.exit(0);

if (process.getuid?.() !== 0) {
  console.error(`Chromium is missing: run \`sudo apt-get update && sudo apt-get install -y chromium\` (or set CHROMIUM_PATH), then run the tests again.`);
  process.exit(1);
}
console.log("[tokenboard] installing Debian's chromium for the e2e tests (apt-get)…");
try {
  execSync("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null", { stdio: "inherit", shell: "/bin/bash" });
} catch {
  console.error("Chromium could not be installed with apt-get: install the Debian package `chromium`, then run the tests again.");
  process.exit(1);
}
if (!fs.existsSync(CHROMIUM)) {
  console.error(`apt-get finished but ${CHROMIUM} is still missing: install the Debian package \`chromium\`.`);
  process.exit(1);
}
