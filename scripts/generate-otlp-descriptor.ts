/**
 * Regenerates app/features/otlp/proto/descriptor.json, the protobufjs descriptor of the vendored
 * OpenTelemetry trace service definitions, after those .proto files change:
 * `npx tsx scripts/generate-otlp-descriptor.ts`. The app loads the JSON (every runtime it runs
 * in — the Vite build, vitest, tsx — imports JSON; none but Vite imports a .proto as text), and
 * tests/unit/otlp-codec.test.ts fails while the JSON and the .proto files differ.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

export const PROTO_DIR = path.resolve("app/features/otlp/proto");
export const DESCRIPTOR_FILE = path.join(PROTO_DIR, "descriptor.json");
const ENTRY = "opentelemetry/proto/collector/trace/v1/trace_service.proto";

/** The descriptor protobufjs makes of the trace service and everything it imports, as file text. */
export function descriptorText(): string {
  const root = new protobuf.Root();
  // Imports are paths from the proto root, as protoc's -I would take them.
  root.resolvePath = (_origin, target) => path.join(PROTO_DIR, target);
  root.loadSync(ENTRY, { keepCase: false });
  root.resolveAll();
  return `${JSON.stringify(root.toJSON(), null, 2)}\n`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  fs.writeFileSync(DESCRIPTOR_FILE, descriptorText());
  console.log(`wrote ${path.relative(process.cwd(), DESCRIPTOR_FILE)}`);
}
