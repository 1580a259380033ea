import type { StaffRole } from "../../db/types";

/**
 * What each role may do. Loaders and actions ask for a permission, never for a role, so the
 * matrix lives here and nowhere else (tests/integration/role-matrix.test.ts proves it).
 */
export const PERMISSIONS = {
  "dashboard:read": ["admin", "support", "analyst"],
  "account:self": ["admin", "support", "analyst"],
  "ledger:read": ["admin", "support"],
  "ledger:adjust": ["admin", "support"],
  "outliers:acknowledge": ["admin", "support"],
  "overrides:edit": ["admin"],
  "reports:read": ["admin", "analyst"],
  "billing:read": ["admin", "analyst"],
  "audit:read": ["admin"],
  "staff:manage": ["admin"],
  "keys:manage": ["admin"],
  "alerts:manage": ["admin"],
} as const satisfies Record<string, readonly StaffRole[]>;

export type Permission = keyof typeof PERMISSIONS;

export function can(role: StaffRole, permission: Permission): boolean {
  return (PERMISSIONS[permission] as readonly StaffRole[]).includes(role);
}

export const ROLES: readonly StaffRole[] = ["admin", "support", "analyst"];
