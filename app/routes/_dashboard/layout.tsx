import type { LoaderFunctionArgs } from "@remix-run/node";
import { Form, Link, NavLink, Outlet, useLoaderData, useNavigation } from "@remix-run/react";
import { GeneralErrorBoundary } from "~/components/error-boundary";
import { can, type Permission } from "~/domain/permissions";
import { requireStaff } from "~/lib/auth.server";
import { getDriftReport } from "~/models/drift-cache.server";

const NAV: { to: string; label: string; permission: Permission; end?: boolean }[] = [
  { to: "/", label: "Overview", permission: "dashboard:read", end: true },
  { to: "/action-types", label: "Action types", permission: "dashboard:read" },
  { to: "/routes", label: "Routes", permission: "dashboard:read" },
  { to: "/users", label: "Users", permission: "dashboard:read" },
  { to: "/outliers", label: "Outliers", permission: "dashboard:read" },
  { to: "/usage", label: "Raw usage", permission: "dashboard:read" },
  { to: "/overrides", label: "Overrides", permission: "dashboard:read" },
  { to: "/reports", label: "Reports", permission: "reports:read" },
  { to: "/billing", label: "Billing", permission: "billing:read" },
  { to: "/billing/reconciliation", label: "Reconciliation", permission: "billing:read" },
  { to: "/audit", label: "Audit log", permission: "audit:read" },
  { to: "/staff", label: "Staff", permission: "staff:manage" },
  { to: "/api-keys", label: "API keys", permission: "keys:manage" },
  { to: "/alerts", label: "Alerts", permission: "alerts:manage" },
];

export async function loader({ request }: LoaderFunctionArgs) {
  const staff = await requireStaff(request);
  const drift = await getDriftReport();
  return {
    staff: { email: staff.email, role: staff.role },
    nav: NAV.filter((item) => can(staff.role, item.permission)).map(({ to, label, end }) => ({ to, label, end: end ?? false })),
    drift: drift && !drift.ok ? drift.items.map((i) => i.message) : [],
  };
}

function DriftBanner({ messages }: { messages: string[] }) {
  if (!messages.length) return null;
  return (
    <div role="status" data-testid="drift-banner" className="border-b border-amber-200 bg-amber-50 px-6 py-2 text-sm text-amber-900">
      <strong className="font-semibold">Action types out of agreement:</strong> {messages.slice(0, 4).join(" · ")}
      {messages.length > 4 ? ` · and ${messages.length - 4} more` : ""}.{" "}
      <span className="text-amber-700">Run <code>npm run cli -- check-action-types</code> for the full report.</span>
    </div>
  );
}

export default function DashboardLayout() {
  const { staff, nav, drift } = useLoaderData<typeof loader>();
  const navigation = useNavigation();
  return (
    <div className="flex min-h-screen">
      <aside className="w-52 shrink-0 border-r border-slate-200 bg-white">
        <div className="flex items-center gap-2 px-5 py-4">
          <img src="/favicon.svg" alt="" className="h-6 w-6" />
          <span className="font-semibold">tokenboard</span>
        </div>
        <nav aria-label="Main" className="px-2">
          <ul className="space-y-0.5">
            {nav.map((item) => (
              <li key={item.to}>
                <NavLink to={item.to} end={item.end} prefetch="intent"
                  className={({ isActive }) =>
                    `block rounded-md px-3 py-1.5 text-sm ${isActive ? "bg-indigo-50 font-medium text-indigo-700" : "text-slate-700 hover:bg-slate-100"}`}>
                  {item.label}
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <div className="mt-6 border-t border-slate-200 px-5 py-4 text-xs text-slate-500">
          <p className="truncate" title={staff.email}>{staff.email}</p>
          <p className="capitalize">{staff.role}</p>
          <Link to="/account" className="mt-2 block text-indigo-600 hover:underline">Your account</Link>
          <Form method="post" action="/logout" className="mt-2">
            <button type="submit" className="text-indigo-600 hover:underline">Log out</button>
          </Form>
        </div>
      </aside>
      <div className="min-w-0 flex-1">
        <DriftBanner messages={drift} />
        <div className={`h-0.5 ${navigation.state === "loading" ? "animate-pulse bg-indigo-500" : "bg-transparent"}`} aria-hidden />
        <main className="px-6 py-5" aria-busy={navigation.state === "loading"}>
          <Outlet />
        </main>
      </div>
    </div>
  );
}

export function ErrorBoundary() {
  return (
    <main className="mx-auto max-w-xl p-10">
      <GeneralErrorBoundary />
    </main>
  );
}
