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
import { changeStaffRole, createStaffMember, listStaff, newStaffSchema, roleSchema, setStaffDisabled } from "~/models/staff-admin.server";

export const meta: MetaFunction = () => [{ title: "Staff · tokenboard" }];

export async function loader({ request }: LoaderFunctionArgs) {
  const me = await requireStaff(request, "staff:manage");
  const staff = await listStaff(getDb());
  return { meId: me.id, staff: staff.map((s) => ({ ...s, disabled: s.disabled_at !== null, created: s.created_at.toISOString().slice(0, 10) })) };
}

const staffId = z.string().uuid("must be a staff id");
const actionSchema = z.discriminatedUnion("intent", [
  newStaffSchema.extend({ intent: z.literal("create") }),
  z.object({ intent: z.literal("role"), staff_id: staffId, role: roleSchema }),
  z.object({ intent: z.literal("disable"), staff_id: staffId }),
  z.object({ intent: z.literal("enable"), staff_id: staffId }),
], { errorMap: () => ({ message: "unknown action" }) });

export async function action({ request }: ActionFunctionArgs) {
  const me = await requireStaff(request, "staff:manage");
  const parsed = parseWith(actionSchema, formObject(await request.formData()));
  if (!parsed.ok) return data({ ok: false as const, errors: parsed.errors, message: null }, { status: 422 });
  const db = getDb();
  const actor = actorOf(me, request);
  const input = parsed.data;
  const result =
    input.intent === "create" ? await createStaffMember(db, actor, input)
    : input.intent === "role" ? await changeStaffRole(db, actor, input.staff_id, input.role)
    : await setStaffDisabled(db, actor, input.staff_id, input.intent === "disable");
  if (!result.ok) return data({ ok: false as const, errors: { [result.field]: result.message }, message: null }, { status: 422 });
  const message = input.intent === "create" ? `Created ${input.email} (${input.role}).` : "Saved.";
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
    { id: "status", header: "Status", enableSorting: false, cell: ({ row }) => (row.original.disabled ? <Badge tone="bad">disabled</Badge> : <Badge tone="good">active</Badge>) },
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
        <Form method="post">
          <input type="hidden" name="intent" value={row.original.disabled ? "enable" : "disable"} />
          <input type="hidden" name="staff_id" value={row.original.id} />
          <button type="submit" disabled={busy} className="rounded border border-slate-300 px-2 py-0.5 hover:bg-slate-100" aria-label={`${row.original.disabled ? "Enable" : "Disable"} ${row.original.email}`}>
            {row.original.disabled ? "Enable" : "Disable"}
          </button>
        </Form>
      ),
    },
  ];
}

export default function StaffPage() {
  const { meId, staff } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const navigation = useNavigation();
  const busy = navigation.state === "submitting";
  const errors = result?.errors ?? {};
  return (
    <>
      <PageHeader title="Staff" description="Who can sign in to tokenboard and with which role. The last active admin cannot be demoted or disabled." />
      {result?.message ? <p role="status" className="mb-3 rounded border border-emerald-200 bg-emerald-50 px-3 py-2 text-sm text-emerald-800">{result.message}</p> : null}
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
