import { createContext, useContext, useEffect, useState } from "react";

/** The X-Request-Id of the document request being rendered on the server (entry.server.tsx). */
export const RequestIdContext = createContext<string | null>(null);

const META_NAME = "tokenboard-request-id";
let hydrated = false;

/**
 * The id of the request that rendered this document, so that an error page can name it: from
 * the server's context while rendering there, from the document's meta tag while hydrating.
 * An error met after a client-side navigation came from another request: null then.
 */
export function useRequestId(): string | null {
  const fromServer = useContext(RequestIdContext);
  const [id] = useState(() => {
    if (typeof document === "undefined") return fromServer;
    return hydrated ? null : (document.querySelector(`meta[name="${META_NAME}"]`)?.getAttribute("content") ?? null);
  });
  return id;
}

/** In the document's head: carries the id from the server render to hydration. */
export function RequestIdMeta() {
  const id = useRequestId();
  useEffect(() => {
    hydrated = true;
  }, []);
  return id ? <meta name={META_NAME} content={id} /> : null;
}
