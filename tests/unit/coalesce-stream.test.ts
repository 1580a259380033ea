import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { coalesceChunks } from "~/lib/coalesce-stream.server";

async function collect(stream: Readable): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return chunks;
}

describe("coalesceChunks", () => {
  it("joins small chunks into ones of at least the given size and keeps every byte in order", async () => {
    const pieces = Array.from({ length: 100 }, (_, i) => Buffer.from(`row ${i},"a, b"\n`));
    const joined = coalesceChunks(200);
    const out = collect(joined);
    await pipeline(Readable.from(pieces), joined);
    const chunks = await out;
    expect(Buffer.concat(chunks).equals(Buffer.concat(pieces))).toBe(true);
    // Every chunk but the last reaches the size; far fewer chunks than pieces.
    expect(chunks.slice(0, -1).every((c) => c.length >= 200)).toBe(true);
    expect(chunks.length).toBeLessThan(pieces.length / 5);
  });

  it("passes on what it holds after the delay when no more arrives", async () => {
    const source = new PassThrough();
    const joined = coalesceChunks(1 << 20, 20);
    source.pipe(joined);
    const first = new Promise<Buffer>((resolve) => joined.once("data", resolve));
    source.write(Buffer.from("id,created_at\n"));
    const started = performance.now();
    expect((await first).toString()).toBe("id,created_at\n");
    expect(performance.now() - started).toBeLessThan(1_000);
    source.end();
  });

  it("stops its source when the reader goes away", async () => {
    let destroyedWith: Error | null | undefined;
    const source = new Readable({
      read() {
        this.push(Buffer.alloc(1024, 97));
      },
      destroy(error, done) {
        destroyedWith = error;
        done(error);
      },
    });
    const joined = coalesceChunks(4096);
    const done = pipeline(source, joined).catch((error: Error) => error);
    joined.once("data", () => joined.destroy(new Error("client went away")));
    await expect(done).resolves.toMatchObject({ message: "client went away" });
    expect(source.destroyed).toBe(true);
    expect(destroyedWith).toBeInstanceOf(Error);
  });
});
