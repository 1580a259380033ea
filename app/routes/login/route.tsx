import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation, useSearchParams } from "@remix-run/react";
import { z } from "zod";
import { localLoginAllowed, ssoSettings } from "~/features/sso/service.server";
import { getStaff, login } from "~/lib/auth.server";
import { safeRedirect } from "~/lib/safe-redirect";
import { formObject, parseWith } from "~/lib/validation";

export const meta: MetaFunction = () => [{ title: "Log in · tokenboard" }];

const loginSchema = z.object({
  email: z.string().trim().min(1, "Enter your email").max(254).email("Enter a valid email address"),
  password: z.string().min(1, "Enter your password").max(1024),
  redirectTo: z.string().max(2048).optional(),
});

export async function loader({ request }: LoaderFunctionArgs) {
  const staff = await getStaff(request);
  const url = new URL(request.url);
  if (staff) throw redirect(safeRedirect(url.searchParams.get("redirectTo"), url.origin));
  return { sso: ssoSettings() !== null, localLogin: localLoginAllowed() };
}

export async function action({ request }: ActionFunctionArgs) {
  if (!localLoginAllowed()) {
    return data({ errors: {} as Record<string, string>, message: "Password login is turned off here: sign in with SSO." }, { status: 403 });
  }
  const parsed = parseWith(loginSchema, formObject(await request.formData()));
  if (!parsed.ok) return data({ errors: parsed.errors, message: null }, { status: 400 });
  const result = await login(request, parsed.data.email, parsed.data.password);
  if (!result.ok) {
    const errors = {} as Record<string, string>;
    if (result.reason === "invalid") return data({ errors, message: result.message }, { status: 401 });
    return data({ errors, message: result.message }, { status: 429, headers: { "Retry-After": String(result.retryAfterSeconds) } });
  }
  throw redirect(safeRedirect(parsed.data.redirectTo, new URL(request.url).origin), { headers: { "Set-Cookie": result.setCookie } });
}

export default function LoginPage() {
  const { sso, localLogin } = useLoaderData<typeof loader>();
  const actionData = useActionData<typeof action>();
  const [params] = useSearchParams();
  const navigation = useNavigation();
  const busy = navigation.state !== "idle";
  const errors: Record<string, string | undefined> = actionData?.errors ?? {};
  return (
    <main className="flex min-h-screen items-center justify-center px-4">
      <div className="w-full max-w-sm">
        <div className="mb-6 flex items-center gap-2">
          <img src="/favicon.svg" alt="" className="h-8 w-8" />
          <span className="text-xl font-semibold">tokenboard</span>
        </div>
        <Form method="post" hidden={!localLogin} className="space-y-4 rounded-lg border border-slate-200 bg-white p-6 shadow-sm" noValidate>
          <h1 className="text-lg font-semibold">Log in</h1>
          {params.get("reset") === "done" && !actionData ? (
            <p role="status" className="rounded-md bg-emerald-50 px-3 py-2 text-sm text-emerald-800">Password set. Log in with your new password.</p>
          ) : null}
          {actionData?.message ? (
            <p role="alert" className="rounded-md bg-rose-50 px-3 py-2 text-sm text-rose-700">
              {actionData.message}
            </p>
          ) : null}
          <input type="hidden" name="redirectTo" value={params.get("redirectTo") ?? "/"} />
          <div>
            <label htmlFor="email" className="block text-sm font-medium text-slate-700">Email</label>
            <input id="email" name="email" type="email" autoComplete="username" required autoFocus
              aria-invalid={errors.email ? true : undefined} aria-describedby={errors.email ? "email-error" : undefined}
              className="mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 text-sm shadow-sm focus:border-indigo-500 focus:ring-indigo-500" />
            {errors.email ? <p id="email-error" className="mt-1 text-sm text-rose-600">{errors.email}</p> : null}
          </div>
          <div>
            <label htmlFor="password" className="block text-sm font-medium text-slate-700">Password</label>
            <input id="password" name="password" type="password" autoComplete="current-password" required
              aria-invalid={errors.password ? true : undefined} aria-describedby={errors.password ? "password-error" : undefined}
              className="mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 text-sm shadow-sm focus:border-indigo-500 focus:ring-indigo-500" />
            {errors.password ? <p id="password-error" className="mt-1 text-sm text-rose-600">{errors.password}</p> : null}
          </div>
          <button type="submit" disabled={busy}
            className="w-full rounded-md bg-indigo-600 px-3 py-2 text-sm font-semibold text-white shadow-sm hover:bg-indigo-500 disabled:opacity-60">
            {busy ? "Logging in…" : "Log in"}
          </button>
        </Form>
        {sso ? <SsoButton redirectTo={params.get("redirectTo") ?? "/"} message={localLogin ? null : actionData?.message} /> : null}
        <p className="mt-4 text-center text-xs text-slate-500">
          Demo logins are printed in the terminal where <code>npm start</code> runs.
        </p>
      </div>
    </main>
  );
}

/** A plain link: /auth/oidc answers with a redirect to the provider, outside Remix's navigation. */
function SsoButton({ redirectTo, message }: { redirectTo: string; message?: string | null }) {
  return (
    <div className="mt-4 space-y-2">
      {message ? (
        <p role="alert" className="rounded-md bg-rose-50 px-3 py-2 text-sm text-rose-700">
          {message}
        </p>
      ) : null}
      <a href={`/auth/oidc?redirectTo=${encodeURIComponent(redirectTo)}`}
        className="block w-full rounded-md border border-slate-300 bg-white px-3 py-2 text-center text-sm font-semibold text-slate-700 shadow-sm hover:bg-slate-50">
        Sign in with SSO
      </a>
    </div>
  );
}
