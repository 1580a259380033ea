/**
 * A real OpenID provider (the `oidc-provider` package) on 127.0.0.1, for single sign-on tests.
 * Its development login page takes any login name as the account id and any password; the
 * account's claims come from `accounts` (unknown names get only a `sub`).
 */
import type { Server } from "node:http";
import Provider from "oidc-provider";
import { freePort } from "../../db/embedded";

export const OIDC_CLIENT = { id: "tokenboard", secret: "sso-test-client-secret-0123456789" };

export type AccountClaims = Record<string, unknown>;

export interface TestProvider {
  issuer: string;
  close: () => Promise<void>;
}

export async function startOidcProvider(options: { redirectUris: string[]; accounts: Record<string, AccountClaims>; port?: number }): Promise<TestProvider> {
  const port = options.port ?? (await freePort());
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{ client_id: OIDC_CLIENT.id, client_secret: OIDC_CLIENT.secret, redirect_uris: options.redirectUris, response_types: ["code"], grant_types: ["authorization_code"] }],
    // The role claims ride on the profile scope, which tokenboard asks for by default.
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name", "tokenboard_role", "groups"] },
    findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id, ...options.accounts[id] }) }),
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ["sso-test-cookie-key"] },
    // tokenboard sends PKCE; requiring it proves that it does.
    pkce: { required: () => true },
    // Set, so the provider does not print a notice for each default it falls back to.
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
  });
  const server: Server = await new Promise((resolve) => {
    const listening = provider.listen(port, "127.0.0.1", () => resolve(listening));
  });
  return {
    issuer,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
