import { afterEach, describe, expect, it } from "vitest";
import { identityFromClaims, roleMapSchema, sameOriginPath } from "~/features/sso/rules";
import { forgetEnv, getEnv } from "~/lib/env.server";

describe("role map setting", () => {
  const parse = (text: string) => roleMapSchema("group").safeParse(text);

  it("reads value=role pairs and JSON, keys case-insensitive", () => {
    expect(parse("Admins=admin, helpdesk=support").data).toEqual({ admins: "admin", helpdesk: "support" });
    expect(parse('{"cn=admins,ou=groups": "admin"}').data).toEqual({ "cn=admins,ou=groups": "admin" });
  });

  it("names the entry and the allowed roles when a role is unknown", () => {
    expect(parse("admins=owner").error?.issues[0]?.message).toBe('group "admins" maps to "owner": the role must be one of admin, support, analyst');
  });

  it("names an entry that is not value=role, and JSON that does not parse", () => {
    expect(parse("admins").error?.issues[0]?.message).toBe('"admins" is not group=role');
    expect(parse("{admins").error?.issues[0]?.message).toContain("is not valid JSON");
  });
});

describe("identity from claims", () => {
  const rules = { roleClaim: "role", domainRoles: { "corp.test": "analyst" as const } };

  it("takes a role named in the claim itself when there is no map", () => {
    expect(identityFromClaims({ email: "a@x.test", role: "support" }, rules)).toMatchObject({ ok: true, role: "support", source: "claim" });
  });

  it("refuses without an email, and with email_verified false (also as a string)", () => {
    expect(identityFromClaims({ role: "admin" }, rules).ok).toBe(false);
    expect(identityFromClaims({ email: "a@corp.test", email_verified: "false" }, rules).ok).toBe(false);
  });

  it("prefers the claim's role over the domain's", () => {
    expect(identityFromClaims({ email: "a@corp.test", role: "admin" }, rules)).toMatchObject({ role: "admin", source: "claim" });
    expect(identityFromClaims({ email: "a@CORP.test" }, rules)).toMatchObject({ role: "analyst", source: "domain" });
  });
});

describe("sameOriginPath", () => {
  const origin = "https://tokenboard.example";
  it.each(["//evil.example", "/\t/evil.example", "/\\evil.example", "https://evil.example", "javascript:alert(1)", "/a\u0000b"])("sends %j home", (to) => {
    expect(sameOriginPath(to, origin)).toBe("/");
  });
  it("keeps a path with its query", () => {
    expect(sameOriginPath("/users?q=a#top", origin)).toBe("/users?q=a#top");
  });
});

describe("SSO environment", () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
    forgetEnv();
  });
  const errorOf = (env: Record<string, string>) => {
    process.env = { ...saved, ...env };
    forgetEnv();
    try {
      getEnv();
      return "";
    } catch (error) {
      return (error as Error).message;
    }
  };
  const base = { TOKENBOARD_OIDC_ISSUER: "https://id.example", TOKENBOARD_OIDC_CLIENT_ID: "tb", TOKENBOARD_OIDC_CLIENT_SECRET: "s3cret" };

  it("asks for every part of the client once one is set", () => {
    expect(errorOf({ TOKENBOARD_OIDC_ISSUER: "https://id.example" })).toContain("TOKENBOARD_OIDC_CLIENT_ID: is required when single sign-on is configured");
  });

  it("asks for a role rule", () => {
    expect(errorOf(base)).toContain("TOKENBOARD_OIDC_ROLE_CLAIM: set it or TOKENBOARD_OIDC_DOMAIN_ROLES");
  });

  it("names a bad role map by its variable", () => {
    expect(errorOf({ ...base, TOKENBOARD_OIDC_ROLE_CLAIM: "groups", TOKENBOARD_OIDC_ROLE_MAP: "x=root" })).toContain('TOKENBOARD_OIDC_ROLE_MAP: claim value "x" maps to "root"');
  });

  it("refuses TOKENBOARD_LOCAL_LOGIN=off without SSO, which would lock everyone out", () => {
    expect(errorOf({ TOKENBOARD_LOCAL_LOGIN: "off" })).toContain("TOKENBOARD_LOCAL_LOGIN: off needs single sign-on");
  });

  it("refuses a redirect URL that is not the callback route", () => {
    expect(errorOf({ ...base, TOKENBOARD_OIDC_ROLE_CLAIM: "groups", TOKENBOARD_OIDC_REDIRECT_URL: "https://tb.example/callback" })).toContain("must end in /auth/oidc/callback");
  });
});
