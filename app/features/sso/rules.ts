/**
 * Single sign-on decisions that need no network or database: reading the role rules of the
 * environment, turning a provider's claims into a tokenboard role, and where to go afterwards.
 */
import { z } from "zod";
import type { StaffRole } from "../../../db/types";
import { ROLES } from "../../domain/permissions";

export type RoleMap = Record<string, StaffRole>;

const roleName = z.enum(ROLES as [StaffRole, ...StaffRole[]], {
  errorMap: () => ({ message: `must be one of ${ROLES.join(", ")}` }),
});

/**
 * "value=role,value=role" or a JSON object {"value": "role"} (for values holding "," or "=",
 * such as LDAP group names). Keys are compared case-insensitively.
 */
export function roleMapSchema(keyName: string) {
  return z
    .string()
    .optional()
    .transform((text, ctx): RoleMap | undefined => {
      if (text === undefined) return undefined;
      let pairs: [string, unknown][];
      if (text.startsWith("{")) {
        try {
          pairs = Object.entries(JSON.parse(text) as Record<string, unknown>);
        } catch {
          ctx.addIssue({ code: "custom", message: `is not valid JSON; write {"${keyName}": "role"} or ${keyName}=role,${keyName}=role` });
          return z.NEVER;
        }
      } else {
        pairs = [];
        for (const entry of text.split(",")) {
          const at = entry.lastIndexOf("=");
          if (at <= 0) {
            ctx.addIssue({ code: "custom", message: `"${entry.trim()}" is not ${keyName}=role` });
            return z.NEVER;
          }
          pairs.push([entry.slice(0, at).trim(), entry.slice(at + 1).trim()]);
        }
      }
      const map: RoleMap = {};
      for (const [key, value] of pairs) {
        const role = roleName.safeParse(value);
        if (!key || !role.success) {
          ctx.addIssue({ code: "custom", message: `${keyName} "${key}" maps to ${JSON.stringify(value)}: the role must be one of ${ROLES.join(", ")}` });
          return z.NEVER;
        }
        map[key.toLowerCase()] = role.data;
      }
      return map;
    });
}

export interface RoleRules {
  roleClaim?: string;
  /** Claim value → role; without it the claim must hold a role's own name. */
  roleMap?: RoleMap;
  domainRoles?: RoleMap;
}

export type Identity = { ok: true; email: string; name: string; role: StaffRole; source: "claim" | "domain" } | { ok: false; message: string };

const emailSchema = z.string().trim().max(254).email();

/** The claim's values: a string, or a list of them (as "groups" usually is). */
function claimValues(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === "string");
  return [];
}

/** Of several matching roles, the one with the most permissions (ROLES is ordered that way). */
function strongest(roles: StaffRole[]): StaffRole | undefined {
  return ROLES.find((role) => roles.includes(role));
}

/**
 * Who signed in and as what: the email must be there and not marked unverified, and a role must
 * map — from the role claim first, else from the email's domain. Nothing maps: refused.
 */
export function identityFromClaims(claims: Record<string, unknown>, rules: RoleRules): Identity {
  const email = emailSchema.safeParse(claims.email);
  if (!email.success) return { ok: false, message: "The sign-in provider did not send an email address, which tokenboard needs to know who you are." };
  // Some providers send the flag as a string.
  if (claims.email_verified === false || claims.email_verified === "false") {
    return { ok: false, message: `The sign-in provider says ${email.data} is not verified. Verify it there, then sign in again.` };
  }
  const name = typeof claims.name === "string" ? claims.name.slice(0, 200) : "";
  if (rules.roleClaim) {
    const values = claimValues(claims[rules.roleClaim]).map((v) => v.toLowerCase());
    const roles = values.flatMap((v) => {
      const role = rules.roleMap ? rules.roleMap[v] : ROLES.find((r) => r === v);
      return role ? [role] : [];
    });
    const role = strongest(roles);
    if (role) return { ok: true, email: email.data, name, role, source: "claim" };
  }
  const domain = email.data.slice(email.data.lastIndexOf("@") + 1).toLowerCase();
  const domainRole = rules.domainRoles?.[domain];
  if (domainRole) return { ok: true, email: email.data, name, role: domainRole, source: "domain" };
  return {
    ok: false,
    message: `${email.data} signed in, but no tokenboard role is granted to this account. Ask an admin to give you a role in the sign-in provider.`,
  };
}

/**
 * Where to go after signing in: a path of this site only. Resolved against the origin so that
 * "/\t/evil.example" and the like cannot leave it; control characters are refused outright.
 */
export function sameOriginPath(to: string | null | undefined, origin: string): string {
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  if (!to || !to.startsWith("/") || /[\u0000-\u001f\u007f\\]/.test(to)) return "/";
  try {
    const url = new URL(to, origin);
    if (url.origin !== new URL(origin).origin) return "/";
    return url.pathname + url.search + url.hash;
  } catch {
    return "/";
  }
}
