/** Characters a browser strips or acts on inside a URL (tab, CR, LF …): never in a redirect. */
function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i += 1) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/**
 * Where to send staff after login: `to` resolved against our own origin and kept only if it
 * stays there, as path + query + fragment; anything else (other hosts, `//host`, `/\host`,
 * control characters, other schemes) goes to "/". An open redirect would let a link send
 * staff to a look-alike site straight after they logged in.
 */
export function safeRedirect(to: string | null | undefined, origin: string): string {
  if (!to || hasControlCharacter(to) || !to.startsWith("/")) return "/";
  let url: URL;
  try {
    url = new URL(to, origin);
  } catch {
    return "/";
  }
  if (url.origin !== new URL(origin).origin) return "/";
  return `${url.pathname}${url.search}${url.hash}`;
}
