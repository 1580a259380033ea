import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import type { ColumnDef } from "@tanstack/react-table";
import { z } from "zod";
import { DataTable } from "~/components/data-table/data-table";
import { Badge, Card, PageHeader } from "~/components/ui/page";
import { ROLES } from "~/domain/permissions";
import { actorOf, requireStaff } from "~/lib/auth.server";
import { getDb } from "~/lib/db.server";
import { formObject, parseWith } from "~/lib/validation";
import { throttledEmails } from "~/models/login-throttle.server";
import { createPasswordResetLink } from "~/models/staff-account.server";
import { changeStaffRole, createStaffMember, listStaff, newStaffSchema, roleSchema, setStaffDisabled, unlockStaffLogin } from "~/models/staff-admin.server";

export const meta: MetaFunction = () => [{ title: "Staff · tokenboard" }];

export async function loader({ request }: LoaderFunctionArgs) {
  const me = await requireStaff(request, "staff:manage");
  const [staff, throttled] = await Promise.all([listStaff(getDb()), throttledEmails(getDb())]);
  return {
    meId: me.id,
    staff: staff.map((s) => ({ ...s, disabled: s.disabled_at !== null, throttled: throttled.has(s.email.toLowerCase()), created: s.created_at.toISOString().slice(0, 10) })),
  };
}

const staffId = z.string().uuid("must be a staff id");
const actionSchema = z.discriminatedUnion("intent", [
  newStaffSchema.extend({ intent: z.literal("create") }),
  z.object({ intent: z.literal("role"), staff_id: staffId, role: roleSchema }),
  z.object({ intent: z.literal("disable"), staff_id: staffId }),
  z.object({ intent: z.literal("enable"), staff_id: staffId }),
  z.object({ intent: z.literal("unlock"), staff_id: staffId }),
  z.object({ intent: z.literal("reset_link"), staff_id: staffId }),
], { errorMap: () => ({ message: "unknown action" }) });

export async function action({ request }: ActionFunctionArgs) {
  const me = await requireStaff(request, "staff:manage");
  const parsed = parseWith(actionSchema, formObject(await request.formData()));
  if (!parsed.ok) return data({ ok: false as const, errors: parsed.errors, message: null }, { status: 422 });
  const db = getDb();
  const actor = actorOf(me, request);
  const input = parsed.data;
  if (input.intent === "reset_link") {
    const link = await createPasswordResetLink(db, actor, input.staff_id);
    if (!link.ok) return data({ ok: false as const, errors: { [link.field]: link.message }, message: null }, { status: 422 });
    // Shown once: only its hash is stored.
    const resetLink = { email: link.email, url: `${new URL(request.url).origin}/reset/${link.token}`, expires: link.expiresAt.toISOString() };
    return data({ ok: true as const, errors: {} as Record<string, string>, message: `Reset link for ${link.email} created.`, resetLink }, { headers: { "Cache-Control": "no-store" } });
  }
  const result =
    input.intent === "unlock" ? await unlockStaffLogin(db, actor, input.staff_id) :
    input.intent === "create" ? await createStaffMember(db, actor, input)
    : input.intent === "role" ? await changeStaffRole(db, actor, input.staff_id, input.role)
    : await setStaffDisabled(db, actor, input.staff_id, input.intent === "disable");
  if (!result.ok) return data({ ok: false as const, errors: { [result.field]: result.message }, message: null }, { status: 422 });
  const message = input.intent === "create" ? `Created ${input.email} (${input.role}).` : input.intent === "unlock" ? "Unlocked: failed logins cleared from every address." : "Saved.";
  return { ok: true as const, errors: {} as Record<string, string>, message };
}

function Field({ label, name, type = "text", error, ...rest }: { label: string; name: string; type?: string; error?: string } & React.InputHTMLAttributes<HTMLInputElement>) {
  return (
    <label className="text-sm">
      <span className="block text-slate-700">{label}</span>
      <input name={name} type={type} aria-invalid={error ? true : undefined} className="mt-1 w-56 rounded border border-slate-300 px-2 py-1" {...rest} />
      {error ? <span role="alert" className="mt-0.5 block text-xs text-rose-700">{error}</span> : null}
    </label>
  );
}

type StaffRow = ReturnType<typeof useLoaderData<typeof loader>>["staff"][number];

function columns(meId: string, busy: boolean): ColumnDef<StaffRow>[] {
  return [
    { id: "email", header: "Email", enableSorting: false, cell: ({ row }) => <>{row.original.email}{row.original.id === meId ? <span className="ml-1 text-xs text-slate-500">(you)</span> : null}</> },
    { id: "name", header: "Name", enableSorting: false, cell: ({ row }) => row.original.name },
    {
      id: "status",
      header: "Status",
      enableSorting: false,
      cell: ({ row }) => (
        <span className="inline-flex gap-1">
          {row.original.disabled ? <Badge tone="bad">disabled</Badge> : <Badge tone="good">active</Badge>}
          {row.original.throttled ? <Badge tone="warn">throttled</Badge> : null}
        </span>
      ),
    },
    { id: "created", header: "Since", enableSorting: false, cell: ({ row }) => row.original.created },
    {
      id: "role",
      header: "Role",
      enableSorting: false,
      cell: ({ row }) => {
        const s = row.original;
        return (
          <Form method="post" className="flex items-center gap-2">
            <input type="hidden" name="intent" value="role" />
            <input type="hidden" name="staff_id" value={s.id} />
            <label className="sr-only" htmlFor={`role-${s.id}`}>Role of {s.email}</label>
            <select id={`role-${s.id}`} name="role" defaultValue={s.role} key={s.role} className="rounded border border-slate-300 px-1 py-0.5">
              {ROLES.map((r) => <option key={r} value={r}>{r}</option>)}
            </select>
            <button type="submit" disabled={busy} className="rounded border border-slate-300 px-2 py-0.5 hover:bg-slate-100">Change role</button>
          </Form>
        );
      },
    },
    {
      id: "access",
      header: () => <span className="sr-only">Access</span>,
      enableSorting: false,
      cell: ({ row }) => (
        <div className="flex max-w-[10.5rem] flex-wrap gap-1">
          <Form method="post">
            <input type="hidden" name="intent" value={row.original.disabled ? "enable" : "disable"} />
            <input type="hidden" name="staff_id" value={row.original.id} />
            <button type="submit" disabled={busy} className="rounded border border-slate-300 px-2 py-0.5 hover:bg-slate-100" aria-label={`${row.original.disabled ? "Enable" : "Disable"} ${row.original.email}`}>
              {row.original.disabled ? "Enable" : "Disable"}
            </button>
          </Form>
          <Form method="post">
            <input type="hidden" name="intent" value="unlock" />
            <input type="hidden" name="staff_id" value={row.original.id} />
            <button type="submit" disabled={busy} className="rounded border border-slate-300 px-2 py-0.5 hover:bg-slate-100" aria-label={`Unlock ${row.original.email}`}>Unlock</button>
          </Form>
          <Form method="post">
            <input type="hidden" name="intent" value="reset_link" />
            <input type="hidden" name="staff_id" value={row.original.id} />
            <button type="submit" disabled={busy} className="whitespace-nowrap rounded border border-slate-300 px-2 py-0.5 hover:bg-slate-100" aria-label={`Reset link for ${row.original.email}`}>Reset link</button>
          </Form>
        </div>
      ),
    },
  ];
}

/** The link is shown this once (only its hash is stored): the admin passes it on privately. */
function ResetLinkNotice({ email, url, expires }: { email: string; url: string; expires: string }) {
  return (
    <div className="mb-3 rounded border border-amber-200 bg-amber-50 px-3 py-2 text-sm text-amber-900">
      <p>
        One-time reset link for <strong>{email}</strong>, valid until {expires.slice(0, 16).replace("T", " ")} UTC. Copy it now: it is not shown again.
      </p>
      <label className="mt-1 block">
        <span className="sr-only">Reset link for {email}</span>
        <input readOnly value={url} data-testid="reset-link" onFocus={(e) => e.currentTarget.select()} className="mt-1 w-full rounded border border-amber-300 bg-white px-2 py-1 font-mono text-xs" />
      </label>
    </div>
  );
}

export default function StaffPage() {
  const { meId, staff } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const navigation = useNavigation();
  const busy = navigation.state === "submitting";
  const errors = result?.errors ?? {};
  return (
    <>
      <PageHeader title="Staff" description="Who can sign in to tokenboard and with which role. The last active admin cannot be demoted or disabled. Unlock clears a member's failed-login throttling; a reset link lets them set a new password once, within 24 hours." />
      {result?.message ? <p role="status" className="mb-3 rounded border border-emerald-200 bg-emerald-50 px-3 py-2 text-sm text-emerald-800">{result.message}</p> : null}
      {result && "resetLink" in result && result.resetLink ? <ResetLinkNotice {...result.resetLink} /> : null}
      {errors.staff_id || errors.role || errors.intent ? (
        <p role="alert" className="mb-3 rounded border border-rose-200 bg-rose-50 px-3 py-2 text-sm text-rose-800">{errors.staff_id ?? errors.role ?? errors.intent}</p>
      ) : null}
      <Card title="Add a staff member" className="mb-4">
        <Form method="post" className="flex flex-wrap items-end gap-3">
          <input type="hidden" name="intent" value="create" />
          <Field label="Email" name="email" type="email" required error={errors.email} autoComplete="off" />
          <Field label="Name" name="name" error={errors.name} />
          <label className="text-sm">
            <span className="block text-slate-700">Role</span>
            <select name="role" defaultValue="support" className="mt-1 rounded border border-slate-300 px-2 py-1">
              {ROLES.map((r) => <option key={r} value={r}>{r}</option>)}
            </select>
          </label>
          <Field label="Initial password (12+ characters)" name="password" type="password" required minLength={12} error={errors.password} autoComplete="new-password" />
          <button type="submit" disabled={busy} className="rounded bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-500 disabled:opacity-60">
            {busy ? "Saving…" : "Create"}
          </button>
        </Form>
      </Card>
      <Card title={`Staff (${staff.length})`}>
        <DataTable columns={columns(meId, busy)} data={staff} testId="staff-table" caption="Staff members" />
      </Card>
    </>
  );
}
