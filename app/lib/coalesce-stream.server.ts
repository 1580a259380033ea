import { Transform } from "node:stream";

/**
 * Joins a byte stream's small chunks into ones of at least `bytes`, or whatever is held after
 * `maxDelayMs` — so what arrives in a trickle still goes on at once. PostgreSQL sends COPY's
 * output in 8 KB pieces; a file or socket written in pieces of 256 KB takes ~30 times fewer
 * writes (on the 1M-row raw export: ~19,000 → ~900, and 1.0–1.2 s of Node CPU instead of
 * 1.6–2.4 s in an alternating comparison).
 */
export function coalesceChunks(bytes = 256 * 1024, maxDelayMs = 50): Transform {
  let held: Buffer[] = [];
  let size = 0;
  let timer: NodeJS.Timeout | undefined;
  const take = (): Buffer => {
    const joined = held.length === 1 ? (held[0] as Buffer) : Buffer.concat(held, size);
    held = [];
    size = 0;
    clearTimeout(timer);
    timer = undefined;
    return joined;
  };
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      held.push(chunk);
      size += chunk.length;
      if (size >= bytes) return done(null, take());
      timer ??= setTimeout(() => {
        if (size > 0) stream.push(take());
      }, maxDelayMs).unref();
      done();
    },
    flush(done) {
      done(null, size > 0 ? take() : undefined);
    },
    destroy(error, done) {
      clearTimeout(timer);
      done(error);
    },
  });
  return stream;
}
