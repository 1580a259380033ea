/**
 * PostgreSQL text refuses NUL characters, and unpaired UTF-16 surrogates cannot be encoded as
 * UTF-8: a form or API field holding one must be refused with a message naming the field, not
 * fail inside the database with a 500. Used by the usage events (app/domain/usage-event.ts) and every form.
 */
// eslint-disable-next-line no-control-regex -- NUL is exactly what must be found
export const STORABLE_TEXT = /^(?![\s\S]*(?:\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]))/;
export const UNSTORABLE_MESSAGE = "must not contain NUL characters or invalid Unicode";
