import { getFormProps, getSelectProps, useForm, type SubmissionResult } from "@conform-to/react";
import { parseWithZod } from "@conform-to/zod";
import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { z } from "zod";
import { FormField, FormMessage } from "~/components/ui/form-field";
import { Card, PageHeader } from "~/components/ui/page";
import { passwordChangeSchema, timezoneChangeSchema } from "~/domain/account-forms";
import { actorOf, currentSessionId, requireStaff } from "~/lib/auth.server";
import { getDb } from "~/lib/db.server";
import { changeOwnPassword, setOwnTimezone } from "~/models/staff-account.server";

export const meta: MetaFunction = () => [{ title: "Your account · tokenboard" }];

const PASSWORD_FIELDS = ["current_password", "new_password", "confirm_password"];

/** Every IANA zone this server knows, for the picker (the action checks the value again). */
function zoneNames(current: string): string[] {
  const zones = new Set(["UTC", ...Intl.supportedValuesOf("timeZone")]);
  zones.add(current);
  return [...zones];
}

export async function loader({ request }: LoaderFunctionArgs) {
  const staff = await requireStaff(request, "account:self");
  return { email: staff.email, role: staff.role, timezone: staff.timezone, zones: zoneNames(staff.timezone) };
}

const intentSchema = z.enum(["password", "timezone"], { errorMap: () => ({ message: "unknown action" }) });

export async function action({ request }: ActionFunctionArgs) {
  const staff = await requireStaff(request, "account:self");
  const formData = await request.formData();
  const intent = intentSchema.safeParse(formData.get("intent"));
  if (!intent.success) return data({ intent: null, result: null, message: "unknown action" }, { status: 422 });
  const actor = actorOf(staff, request);
  if (intent.data === "timezone") {
    const submission = parseWithZod(formData, { schema: timezoneChangeSchema });
    if (submission.status !== "success") return data({ intent: intent.data, result: submission.reply(), message: null }, { status: 422 });
    await setOwnTimezone(getDb(), actor, staff.id, submission.value.timezone);
    return { intent: intent.data, result: submission.reply(), message: `Time zone set to ${submission.value.timezone}. Reports now default to it.` };
  }
  const submission = parseWithZod(formData, { schema: passwordChangeSchema });
  if (submission.status !== "success") return data({ intent: intent.data, result: submission.reply({ hideFields: PASSWORD_FIELDS }), message: null }, { status: 422 });
  const changed = await changeOwnPassword(getDb(), actor, {
    staffId: staff.id,
    currentPassword: submission.value.current_password,
    newPassword: submission.value.new_password,
    keepSessionId: currentSessionId(request),
  });
  if (!changed.ok) {
    return data({ intent: intent.data, result: submission.reply({ fieldErrors: { [changed.field]: [changed.message] }, hideFields: PASSWORD_FIELDS }), message: null }, { status: 422 });
  }
  return { intent: intent.data, result: submission.reply({ resetForm: true }), message: "Password changed. Your other sessions have been logged out." };
}

function PasswordForm({ lastResult, message, busy }: { lastResult: SubmissionResult<string[]> | null | undefined; message: string | null; busy: boolean }) {
  const [form, fields] = useForm({
    id: "password-form",
    lastResult,
    shouldValidate: "onBlur",
    shouldRevalidate: "onInput",
    onValidate: ({ formData }) => parseWithZod(formData, { schema: passwordChangeSchema }),
  });
  return (
    <Form method="post" {...getFormProps(form)} className="space-y-3">
      <input type="hidden" name="intent" value="password" />
      <FormMessage id={form.errorId} errors={form.errors} success={message} />
      <FormField label="Current password" meta={fields.current_password} type="password" autoComplete="current-password" />
      <FormField label="New password" meta={fields.new_password} type="password" autoComplete="new-password" hint="At least 12 characters." />
      <FormField label="Repeat the new password" meta={fields.confirm_password} type="password" autoComplete="new-password" />
      <button type="submit" disabled={busy} className="rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-500 disabled:opacity-60">
        Change password
      </button>
    </Form>
  );
}

function TimezoneForm({ lastResult, message, busy, timezone, zones }: { lastResult: SubmissionResult<string[]> | null | undefined; message: string | null; busy: boolean; timezone: string; zones: string[] }) {
  const [form, fields] = useForm({
    id: "timezone-form",
    lastResult,
    defaultValue: { timezone },
    shouldValidate: "onBlur",
    onValidate: ({ formData }) => parseWithZod(formData, { schema: timezoneChangeSchema }),
  });
  const meta = fields.timezone;
  return (
    <Form method="post" {...getFormProps(form)} className="space-y-3">
      <input type="hidden" name="intent" value="timezone" />
      <FormMessage id={form.errorId} errors={form.errors} success={message} />
      <div>
        <label htmlFor={meta.id} className="block text-sm font-medium text-slate-700">Time zone</label>
        <select {...getSelectProps(meta)} key={meta.key} className="mt-1 block w-72 max-w-full rounded-md border border-slate-300 px-2 py-1.5 text-sm">
          {zones.map((zone) => <option key={zone} value={zone}>{zone}</option>)}
        </select>
        <p className="mt-1 text-xs text-slate-500">Reports and exports use it when no time zone is given.</p>
        <p id={meta.errorId} role={meta.errors ? "alert" : undefined} className="mt-1 text-sm text-rose-700">{meta.errors?.join(" ")}</p>
      </div>
      <button type="submit" disabled={busy} className="rounded-md bg-slate-800 px-3 py-1.5 text-sm font-medium text-white hover:bg-slate-700 disabled:opacity-60">
        Save time zone
      </button>
    </Form>
  );
}

export default function AccountPage() {
  const { email, role, timezone, zones } = useLoaderData<typeof loader>();
  const actionData = useActionData<typeof action>();
  const busy = useNavigation().state === "submitting";
  const resultFor = (intent: "password" | "timezone") => (actionData?.intent === intent ? actionData : undefined);
  return (
    <>
      <PageHeader title="Your account" description={<>{email} · <span className="capitalize">{role}</span></>} />
      {actionData && actionData.intent === null ? <FormMessage errors={[actionData.message ?? "unknown action"]} /> : null}
      <div className="grid gap-4 lg:grid-cols-2">
        <Card title="Change password">
          <PasswordForm lastResult={resultFor("password")?.result} message={resultFor("password")?.message ?? null} busy={busy} />
        </Card>
        <Card title="Time zone">
          <TimezoneForm lastResult={resultFor("timezone")?.result} message={resultFor("timezone")?.message ?? null} busy={busy} timezone={timezone} zones={zones} />
        </Card>
      </div>
    </>
  );
}
