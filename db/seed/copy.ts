/**
 * Streaming rows into PostgreSQL with COPY FROM STDIN (text format). Lines are produced
 * lazily and written with backpressure, so memory stays constant however many rows a
 * generator yields.
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";

export type CopyValue = string | number | boolean | null;

// COPY text format: backslash, tab, newline and carriage return must be escaped.
const SPECIAL = /[\\\t\n\r]/g;
const ESCAPES: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" };

export function copyField(value: CopyValue): string {
  if (value === null) return "\\N";
  if (typeof value === "boolean") return value ? "t" : "f";
  if (typeof value === "number") return String(value);
  return value.replace(SPECIAL, (c) => ESCAPES[c] as string);
}

export function copyLine(values: readonly CopyValue[]): string {
  return `${values.map(copyField).join("\t")}\n`;
}

/** Groups lines into chunks of a few hundred kilobytes: one stream write each. */
function* chunked(lines: Iterable<string>, linesPerChunk: number): Generator<string> {
  let buffer: string[] = [];
  for (const line of lines) {
    buffer.push(line);
    if (buffer.length >= linesPerChunk) {
      yield buffer.join("");
      buffer = [];
    }
  }
  if (buffer.length) yield buffer.join("");
}

/** Runs one COPY … FROM STDIN on `client` with the given lines. */
export async function copyLines(client: pg.PoolClient | pg.Client, statement: string, lines: Iterable<string>): Promise<void> {
  const target = client.query(copyFrom(statement));
  await pipeline(Readable.from(chunked(lines, 2_000)), target);
}
