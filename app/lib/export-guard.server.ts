/**
 * Bounds on CSV downloads (issue 23: 60 stalled readers of raw.csv held 60 COPY queries and
 * ~700 MB of server memory). Each staff member runs a bounded number of exports at once, and a
 * reader that stops reading is cut: its stream destroyed, which closes the COPY's connection.
 */
import type { Readable } from "node:stream";

const running = new Map<string, number>();

/** A slot for one export of this staff member (give it back with the returned function), or null at the cap. */
export function takeExportSlot(staffId: string, max: number): (() => void) | null {
  const count = running.get(staffId) ?? 0;
  if (count >= max) return null;
  running.set(staffId, count + 1);
  let given = false;
  return () => {
    if (given) return;
    given = true;
    const left = (running.get(staffId) ?? 1) - 1;
    if (left > 0) running.set(staffId, left);
    else running.delete(staffId);
  };
}

export class ReaderStalledError extends Error {
  constructor(seconds: number) {
    super(`the client stopped reading for ${seconds} s; the export was ended`);
  }
}

/**
 * `source` as a web stream that holds one chunk at a time and hands over the next only when
 * the reader asks for it. A reader that does not ask within `stallMs` of the last chunk has
 * stopped reading: the source is destroyed and the stream errors. `onClose` runs once, however
 * it ends.
 */
export function stallGuardedStream(source: Readable, stallMs: number, onClose: () => void): ReadableStream<Uint8Array> {
  const chunks = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const close = () => {
    clearTimeout(timer);
    if (closed) return;
    closed = true;
    onClose();
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        clearTimeout(timer);
        try {
          const next = await chunks.next();
          if (closed) return;
          if (next.done) {
            close();
            controller.close();
            return;
          }
          controller.enqueue(new Uint8Array(next.value.buffer, next.value.byteOffset, next.value.byteLength));
          timer = setTimeout(() => {
            const error = new ReaderStalledError(stallMs / 1000);
            close();
            source.destroy(error);
            controller.error(error);
          }, stallMs);
        } catch (error) {
          if (closed) return;
          close();
          controller.error(error);
        }
      },
      cancel(reason) {
        close();
        source.destroy(reason instanceof Error ? reason : new Error("download cancelled"));
      },
    },
    // One chunk queued: pull runs again only once the reader took it.
    { highWaterMark: 1 },
  );
}
