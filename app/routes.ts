import { index, layout, route, type RouteConfig } from "@remix-run/route-config";

/** Every URL of tokenboard, in one place. */
export default [
  route("login", "routes/login/route.tsx"),
  route("logout", "routes/logout/route.tsx"),
  route("reset/:token", "routes/reset/route.tsx"),
  route("healthz", "routes/healthz/route.ts"),
  route("auth/oidc", "routes/auth.oidc/route.ts"),
  route("auth/oidc/callback", "routes/auth.oidc.callback/route.tsx"),

  layout("routes/_dashboard/layout.tsx", [
    index("routes/overview/route.tsx"),
    route("action-types", "routes/action-types/route.tsx"),
    route("action-types/:name", "routes/action-type/route.tsx"),
    route("routes", "routes/routes/route.tsx"),
    route("users", "routes/users/route.tsx"),
    route("users/:userId", "routes/user/route.tsx"),
    route("outliers", "routes/outliers/route.tsx"),
    route("usage", "routes/usage/route.tsx"),
    route("overrides", "routes/overrides/route.tsx"),
    route("reports", "routes/reports/route.tsx"),
    route("billing", "routes/billing/route.tsx"),
    route("billing/reconciliation", "routes/billing.reconciliation/route.tsx"),
    route("audit", "routes/audit/route.tsx"),
    route("staff", "routes/staff/route.tsx"),
    route("api-keys", "routes/api-keys/route.tsx"),
    route("account", "routes/account/route.tsx"),
    route("alerts", "routes/alerts/route.tsx"),
  ]),

  route("reports/export.csv", "routes/reports.export/route.ts"),
  route("reports/raw.csv", "routes/reports.raw/route.ts"),
  route("reports/balances.csv", "routes/reports.balances/route.ts"),
  route("billing/reconciliation.csv", "routes/billing.reconciliation.csv/route.ts"),
  route("alerts/reports/:reportId", "routes/alerts.report/route.ts"),

  route("api/v1/usage", "routes/api.v1.usage/route.ts"),
  route("api/v1/ledger", "routes/api.v1.ledger/route.ts"),
  route("api/v1/users/:userId/balance", "routes/api.v1.balance/route.ts"),
  route("api/otlp/v1/traces", "routes/api.otlp.v1.traces/route.ts"),
] satisfies RouteConfig;
