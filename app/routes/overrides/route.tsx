import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import type { ColumnDef } from "@tanstack/react-table";
import { z } from "zod";
import { DataTable } from "~/components/data-table/data-table";
import { Badge, Card, PageHeader } from "~/components/ui/page";
import { filterText } from "~/domain/inputs";
import { ACTION_TYPES, actionTypeSchema, formatExpectedRange } from "~/domain/action-types";
import { formatInt } from "~/domain/format";
import { can } from "~/domain/permissions";
import { actorOf, requireStaff } from "~/lib/auth.server";
import { getDb } from "~/lib/db.server";
import { formObject, parseWith, searchObject } from "~/lib/validation";
import { listOverrides, overrideChangeSchema, overrideHistory, overrideValueSchema, previewImpact, setOverride, type OverrideHistoryPage } from "~/models/overrides.server";

export const meta: MetaFunction = () => [{ title: "Overrides · tokenboard" }];

const HISTORY_PAGE_SIZE = 20;

const searchSchema = z.object({
  edit: actionTypeSchema.optional(),
  htype: actionTypeSchema.optional().or(z.literal("").transform(() => undefined)),
  hpage: z.coerce.number().int().min(1).max(100_000).default(1),
  saved: filterText(100),
});

export async function loader({ request }: LoaderFunctionArgs) {
  const staff = await requireStaff(request, "dashboard:read");
  const params = new URL(request.url).searchParams;
  const parsed = parseWith(searchSchema, searchObject(params));
  if (!parsed.ok) throw data({ message: `Invalid address: ${Object.entries(parsed.errors).map(([k, m]) => `${k} ${m}`).join("; ")}` }, { status: 400 });
  const { edit, htype, hpage, saved } = parsed.data;
  const canEdit = can(staff.role, "overrides:edit");
  const db = getDb();
  let preview = null;
  let valueError: string | null = null;
  const rawValue = params.get("value");
  if (canEdit && edit && rawValue !== null) {
    const value = parseWith(overrideValueSchema, rawValue);
    if (value.ok) preview = await previewImpact(db, edit, value.data);
    else valueError = value.errors.form ?? "is not a valid value";
  }
  const [overrides, history] = await Promise.all([listOverrides(db), overrideHistory(db, { actionType: htype }, hpage, HISTORY_PAGE_SIZE)]);
  const byType = new Map(overrides.map((o) => [o.action_type, o.token_value]));
  return {
    canEdit,
    edit: canEdit ? (edit ?? null) : null,
    rawValue: rawValue ?? "",
    valueError,
    preview,
    saved: saved ?? null,
    types: ACTION_TYPES.map((t) => ({
      name: t.name,
      label: t.label,
      unit: t.unit,
      expected: formatExpectedRange(t.expectedRange),
      override: byType.get(t.name) ?? null,
      registryDefault: t.defaultOverride,
    })),
    history: { ...history, page: hpage, pageSize: HISTORY_PAGE_SIZE, type: htype ?? "" },
  };
}

export async function action({ request }: ActionFunctionArgs) {
  const staff = await requireStaff(request, "overrides:edit");
  const parsed = parseWith(overrideChangeSchema, formObject(await request.formData()));
  if (!parsed.ok) return data({ errors: parsed.errors }, { status: 422 });
  const result = await setOverride(getDb(), actorOf(staff, request), { actionType: parsed.data.action_type, value: parsed.data.value, reason: parsed.data.reason });
  if (!result.ok) return data({ errors: { [result.field]: result.message } }, { status: 422 });
  return redirect(`/overrides?saved=${encodeURIComponent(parsed.data.action_type)}&htype=${encodeURIComponent(parsed.data.action_type)}`);
}

type HistoryRow = OverrideHistoryPage["rows"][number];

const valueText = (v: number | null) => (v === null ? "none" : formatInt(v));

const historyColumns: ColumnDef<HistoryRow>[] = [
  { id: "changed_at", header: "When", cell: ({ row }) => new Date(row.original.changed_at).toISOString().replace("T", " ").slice(0, 19) + " UTC", enableSorting: false },
  { id: "action_type", header: "Type", cell: ({ row }) => row.original.action_type, enableSorting: false },
  { id: "old_value", header: "Old", cell: ({ row }) => valueText(row.original.old_value), enableSorting: false, meta: { align: "right" } },
  { id: "new_value", header: "New", cell: ({ row }) => valueText(row.original.new_value), enableSorting: false, meta: { align: "right" } },
  { id: "who", header: "Who", cell: ({ row }) => row.original.changed_by_label, enableSorting: false },
  { id: "reason", header: "Why", cell: ({ row }) => <span className="whitespace-normal">{row.original.reason}</span>, enableSorting: false },
];

type TypeRow = ReturnType<typeof useLoaderData<typeof loader>>["types"][number];

const typeColumns: ColumnDef<TypeRow>[] = [
  { id: "name", header: "Type", enableSorting: false, cell: ({ row }) => <span data-testid={`override-row-${row.original.name}`}><span className="font-medium">{row.original.name}</span> <span className="text-slate-500">{row.original.label}</span></span> },
  { id: "unit", header: "Unit", enableSorting: false, cell: ({ row }) => row.original.unit },
  { id: "expected", header: "Expected", enableSorting: false, cell: ({ row }) => row.original.expected },
  { id: "override", header: "Override", enableSorting: false, meta: { align: "right" }, cell: ({ row }) => (row.original.override === null ? <Badge>none</Badge> : <span data-testid={`override-value-${row.original.name}`}>{formatInt(row.original.override)}</span>) },
  { id: "default", header: "Registry default", enableSorting: false, meta: { align: "right" }, cell: ({ row }) => (row.original.registryDefault === null ? "—" : formatInt(row.original.registryDefault)) },
];

const editColumn: ColumnDef<TypeRow> = {
  id: "edit",
  header: () => <span className="sr-only">Edit</span>,
  enableSorting: false,
  meta: { align: "right" },
  cell: ({ row }) => <Link to={`?edit=${row.original.name}`} className="text-indigo-700 hover:underline" aria-label={`Edit override of ${row.original.name}`}>Edit</Link>,
};

function ImpactPreviewCard({ preview }: { preview: NonNullable<ReturnType<typeof useLoaderData<typeof loader>>["preview"]> }) {
  const diff = preview.newCharge - preview.currentCharge;
  return (
    <div data-testid="override-preview" className="rounded-md border border-indigo-100 bg-indigo-50/50 p-3 text-sm">
      <p className="font-medium text-slate-800">Impact over the last {preview.days} days ({formatInt(preview.calls)} successful calls, {formatInt(preview.tokensUsed)} tokens reported)</p>
      <dl className="mt-2 grid grid-cols-3 gap-3">
        <div>
          <dt className="text-xs text-slate-500">Charged at current ({valueText(preview.currentValue)})</dt>
          <dd className="text-lg font-semibold tabular-nums" data-testid="preview-current">{formatInt(preview.currentCharge)}</dd>
        </div>
        <div>
          <dt className="text-xs text-slate-500">Would charge at new ({valueText(preview.newValue)})</dt>
          <dd className="text-lg font-semibold tabular-nums" data-testid="preview-new">{formatInt(preview.newCharge)}</dd>
        </div>
        <div>
          <dt className="text-xs text-slate-500">Difference</dt>
          <dd className={`text-lg font-semibold tabular-nums ${diff > 0 ? "text-rose-700" : diff < 0 ? "text-emerald-700" : ""}`} data-testid="preview-diff">
            {diff > 0 ? "+" : ""}{formatInt(diff)}
          </dd>
        </div>
      </dl>
      <p className="mt-1 text-xs text-slate-500">Without an override a call is charged the tokens it reported; with one, the override per call.</p>
    </div>
  );
}

function EditOverride({ edit }: { edit: string }) {
  const { rawValue, valueError, preview, types } = useLoaderData<typeof loader>();
  const actionData = useActionData<typeof action>();
  const errors: Record<string, string> = actionData && "errors" in actionData ? actionData.errors : {};
  const navigation = useNavigation();
  const busy = navigation.state !== "idle";
  const current = types.find((t) => t.name === edit);
  return (
    <Card title={`Edit override: ${edit}`} className="mb-4">
      <p className="mb-3 text-sm text-slate-600">
        Current: <strong>{valueText(current?.override ?? null)}</strong> · expected range {current?.expected}
        {current?.registryDefault !== null ? ` · registry default ${current?.registryDefault}` : ""}
      </p>
      <Form method="get" className="flex flex-wrap items-end gap-3" preventScrollReset>
        <input type="hidden" name="edit" value={edit} />
        <label className="text-sm">
          <span className="block text-slate-700">New value (tokens per call; empty removes)</span>
          <input name="value" defaultValue={rawValue} inputMode="numeric" aria-invalid={valueError ? true : undefined} aria-describedby={valueError ? "value-error" : undefined}
            className="mt-1 w-40 rounded border border-slate-300 px-2 py-1" />
        </label>
        <button type="submit" className="rounded bg-slate-800 px-3 py-1.5 text-sm text-white hover:bg-slate-700 disabled:opacity-60" disabled={busy}>
          {navigation.state === "loading" ? "Computing…" : "Preview impact"}
        </button>
        <Link to="/overrides" className="text-sm text-slate-600 hover:underline">Cancel</Link>
      </Form>
      {valueError ? <p id="value-error" role="alert" className="mt-2 text-sm text-rose-700">Value {valueError}</p> : null}
      {preview ? (
        <div className="mt-4 space-y-3">
          <ImpactPreviewCard preview={preview} />
          <Form method="post" className="space-y-2">
            <input type="hidden" name="action_type" value={edit} />
            <input type="hidden" name="value" value={preview.newValue === null ? "" : String(preview.newValue)} />
            <label className="block text-sm">
              <span className="block text-slate-700">Reason for the change (required)</span>
              <textarea name="reason" required minLength={3} maxLength={500} rows={2} aria-invalid={errors.reason ? true : undefined}
                className="mt-1 w-full max-w-xl rounded border border-slate-300 px-2 py-1" />
            </label>
            {Object.entries(errors).map(([field, message]) => (
              <p key={field} role="alert" className="text-sm text-rose-700">{field === "form" ? message : `${field}: ${message}`}</p>
            ))}
            <button type="submit" className="rounded bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-500 disabled:opacity-60" disabled={busy}>
              {navigation.state === "submitting" ? "Saving…" : `Save ${valueText(preview.newValue)} for ${edit}`}
            </button>
          </Form>
        </div>
      ) : null}
    </Card>
  );
}

export default function Overrides() {
  const { canEdit, edit, saved, types, history } = useLoaderData<typeof loader>();
  return (
    <>
      <PageHeader title="Overrides" description="Fixed tokens charged per call of an action type. Every change is kept with who, why and when." />
      {saved ? <p role="status" className="mb-3 rounded border border-emerald-200 bg-emerald-50 px-3 py-2 text-sm text-emerald-800">Override for {saved} saved.</p> : null}
      {edit ? <EditOverride edit={edit} /> : null}
      <Card title="Action types" className="mb-4">
        <DataTable columns={canEdit ? [...typeColumns, editColumn] : typeColumns} data={types} testId="overrides-table" caption="Action types and their overrides" />
      </Card>
      <Card title="History of changes" actions={
        <Form method="get" className="flex items-center gap-2 text-sm">
          <label htmlFor="htype" className="text-slate-600">Type</label>
          <select id="htype" name="htype" defaultValue={history.type} className="rounded border border-slate-300 px-1 py-0.5">
            <option value="">all</option>
            {types.map((t) => <option key={t.name} value={t.name}>{t.name}</option>)}
          </select>
          <button type="submit" className="rounded border border-slate-300 px-2 py-0.5 hover:bg-slate-100">Filter</button>
        </Form>
      }>
        <DataTable columns={historyColumns} data={history.rows} page={{ page: history.page, pageSize: history.pageSize, total: history.total }}
          params={{ sort: "hsort", dir: "hdir", page: "hpage" }} emptyTitle="No override changes yet" testId="override-history" caption="Override history" />
      </Card>
    </>
  );
}
