/** A UUIDv7 (RFC 9562) in its canonical lower-case text form. */
export const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The Unix milliseconds a UUIDv7 begins with (its first 48 bits). */
export function uuidV7Millis(id: string): number {
  return Number.parseInt(id.replace("-", "").slice(0, 12), 16);
}
