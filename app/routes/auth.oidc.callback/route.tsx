import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Link, useLoaderData } from "@remix-run/react";
import { finishSsoLogin } from "~/features/sso/service.server";

export const meta: MetaFunction = () => [{ title: "Single sign-on · tokenboard" }];

/** Public: the provider sends the browser back here; success redirects, a refusal renders why. */
export async function loader({ request }: LoaderFunctionArgs) {
  const outcome = await finishSsoLogin(request);
  const headers = new Headers({ "Cache-Control": "no-store" });
  for (const cookie of outcome.cookies) headers.append("Set-Cookie", cookie);
  if (outcome.ok) throw redirect(outcome.redirectTo, { headers });
  return data({ message: outcome.message }, { status: outcome.status, headers });
}

export default function SsoRefusedPage() {
  const { message } = useLoaderData<typeof loader>();
  return (
    <main className="flex min-h-screen items-center justify-center px-4">
      <div className="w-full max-w-sm space-y-4 rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
        <h1 className="text-lg font-semibold">Single sign-on did not sign you in</h1>
        <p role="alert" className="rounded-md bg-rose-50 px-3 py-2 text-sm text-rose-700">
          {message}
        </p>
        <Link to="/login" className="block text-sm font-medium text-indigo-600 hover:text-indigo-500">
          Back to the login page
        </Link>
      </div>
    </main>
  );
}
