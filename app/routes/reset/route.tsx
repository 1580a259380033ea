import { getFormProps, useForm } from "@conform-to/react";
import { parseWithZod } from "@conform-to/zod";
import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { z } from "zod";
import { FormField, FormMessage } from "~/components/ui/form-field";
import { passwordResetSchema, RESET_LINK_UNUSABLE } from "~/domain/account-forms";
import { getDb } from "~/lib/db.server";
import { clientIp } from "~/lib/http.server";
import { findPasswordReset, resetPasswordWithToken } from "~/models/staff-account.server";

export const meta: MetaFunction = () => [{ title: "Set a new password · tokenboard" }, { name: "robots", content: "noindex" }];

// The link is a credential: never cached, never indexed.
const NO_STORE = { "Cache-Control": "no-store" };

/** Reset tokens are 32 random bytes in base64url; anything else is not looked up. */
const tokenSchema = z.string().regex(/^[A-Za-z0-9_-]{43}$/);

export async function loader({ params }: LoaderFunctionArgs) {
  const token = tokenSchema.safeParse(params.token);
  const reset = token.success ? await findPasswordReset(getDb(), token.data) : null;
  if (!reset) return data({ email: null, expires: null }, { status: 404, headers: NO_STORE });
  return data({ email: reset.email, expires: reset.expiresAt.toISOString() }, { headers: NO_STORE });
}

export async function action({ request, params }: ActionFunctionArgs) {
  const submission = parseWithZod(await request.formData(), { schema: passwordResetSchema });
  const hidden = { hideFields: ["new_password", "confirm_password"] };
  if (submission.status !== "success") return data(submission.reply(hidden), { status: 422, headers: NO_STORE });
  const token = tokenSchema.safeParse(params.token);
  const result = token.success
    ? await resetPasswordWithToken(getDb(), token.data, submission.value.new_password, clientIp(request))
    : ({ ok: false, field: "form", message: RESET_LINK_UNUSABLE } as const);
  if (!result.ok) return data(submission.reply({ formErrors: [result.message], ...hidden }), { status: 410, headers: NO_STORE });
  throw redirect("/login?reset=done");
}

export default function ResetPasswordPage() {
  const { email } = useLoaderData<typeof loader>();
  const lastResult = useActionData<typeof action>();
  const busy = useNavigation().state === "submitting";
  const [form, fields] = useForm({
    id: "reset-form",
    lastResult,
    shouldValidate: "onBlur",
    shouldRevalidate: "onInput",
    onValidate: ({ formData }) => parseWithZod(formData, { schema: passwordResetSchema }),
  });
  return (
    <main className="flex min-h-screen items-center justify-center px-4">
      <div className="w-full max-w-sm space-y-4 rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
        <h1 className="text-lg font-semibold">Set a new password</h1>
        {email ? (
          <Form method="post" {...getFormProps(form)} className="space-y-3">
            <p className="text-sm text-slate-600">For <strong>{email}</strong>. Setting it logs this account out everywhere.</p>
            <FormMessage id={form.errorId} errors={form.errors} />
            <FormField label="New password" meta={fields.new_password} type="password" autoComplete="new-password" hint="At least 12 characters." autoFocus />
            <FormField label="Repeat the new password" meta={fields.confirm_password} type="password" autoComplete="new-password" />
            <button type="submit" disabled={busy} className="w-full rounded-md bg-indigo-600 px-3 py-2 text-sm font-semibold text-white hover:bg-indigo-500 disabled:opacity-60">
              Set password
            </button>
          </Form>
        ) : (
          <p role="alert" className="text-sm text-rose-700">{RESET_LINK_UNUSABLE}</p>
        )}
      </div>
    </main>
  );
}
