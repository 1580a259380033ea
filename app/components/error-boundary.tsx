import { isRouteErrorResponse, Link, useRouteError } from "@remix-run/react";
import { useRequestId } from "~/lib/request-id";

function messageOf(data: unknown): string | null {
  if (typeof data === "string") {
    try {
      return messageOf(JSON.parse(data));
    } catch {
      return data.length < 300 ? data : null;
    }
  }
  if (data && typeof data === "object" && "message" in data && typeof data.message === "string") return data.message;
  return null;
}

const HINTS: Record<number, string> = {
  400: "Check the values in the address bar or the form and try again.",
  403: "Your role does not allow this. Ask an admin if you need it.",
  404: "Nothing is here. Check the link, or go back to the overview.",
  503: "The database is not reachable right now. The page will work again when it is back; try again in a few seconds.",
};

/** One error page for every route: what happened and what to do; never a stack trace. */
export function GeneralErrorBoundary() {
  const error = useRouteError();
  const requestId = useRequestId();
  let status = 500;
  let message = "Something went wrong on our side. Try again; if it keeps happening, tell the team that runs tokenboard.";
  if (isRouteErrorResponse(error)) {
    status = error.status;
    message = messageOf(error.data) ?? HINTS[status] ?? error.statusText ?? message;
  }
  return (
    <div role="alert" className="rounded-lg border border-rose-200 bg-white p-6 shadow-sm">
      <p className="text-sm font-semibold text-rose-600">Error {status}</p>
      <h1 className="mt-1 text-lg font-semibold text-slate-900">{message}</h1>
      {HINTS[status] && messageOf(isRouteErrorResponse(error) ? error.data : null) ? (
        <p className="mt-2 text-sm text-slate-600">{HINTS[status]}</p>
      ) : null}
      {requestId ? (
        <p className="mt-2 text-xs text-slate-500">
          Reference: <code className="select-all">{requestId}</code> (quote it when you report this)
        </p>
      ) : null}
      <Link to="/" className="mt-4 inline-block text-sm font-medium text-indigo-600 hover:underline">
        Back to overview
      </Link>
    </div>
  );
}
