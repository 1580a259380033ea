import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import type { ColumnDef } from "@tanstack/react-table";
import { z } from "zod";
import { DataTable } from "~/components/data-table/data-table";
import { Badge, Card, PageHeader } from "~/components/ui/page";
import { actorOf, requireStaff } from "~/lib/auth.server";
import { getDb } from "~/lib/db.server";
import { formObject, parseWith } from "~/lib/validation";
import { API_KEY_SCOPES, newApiKeySchema, ROTATION_OVERLAPS, SCOPE_DESCRIPTIONS, type ApiKeyStatus } from "~/domain/api-keys";
import { createApiKey, listApiKeys, revokeApiKey, rotateApiKey } from "~/models/api-keys.server";
import type { CreatedApiKey } from "~/models/api-keys.server";

export const meta: MetaFunction = () => [{ title: "API keys · tokenboard" }];

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export async function loader({ request }: LoaderFunctionArgs) {
  await requireStaff(request, "keys:manage");
  const keys = await listApiKeys(getDb());
  return {
    keys: keys.map((k) => ({ ...k, createdAt: k.createdAt.toISOString(), lastUsedAt: iso(k.lastUsedAt), expiresAt: iso(k.expiresAt), revokedAt: iso(k.revokedAt) })),
  };
}

const keyId = z.string().uuid("must be an API key id");
const overlapSchema = z.enum(Object.keys(ROTATION_OVERLAPS) as [keyof typeof ROTATION_OVERLAPS], { errorMap: () => ({ message: `must be one of ${Object.keys(ROTATION_OVERLAPS).join(", ")}` }) });
const actionSchema = z.discriminatedUnion("intent", [
  newApiKeySchema.extend({ intent: z.literal("create") }),
  z.object({ intent: z.literal("revoke"), key_id: keyId }),
  z.object({ intent: z.literal("rotate"), key_id: keyId, overlap: overlapSchema }),
], { errorMap: () => ({ message: "unknown action" }) });

type ActionAnswer = { ok: boolean; errors: Record<string, string>; message: string | null; created: CreatedApiKey | null };

// The full key is in this answer only: no store may keep it.
const NO_STORE = { "cache-control": "no-store" };

export async function action({ request }: ActionFunctionArgs) {
  const me = await requireStaff(request, "keys:manage");
  const parsed = parseWith(actionSchema, formObject(await request.formData()));
  if (!parsed.ok) return data<ActionAnswer>({ ok: false, errors: parsed.errors, message: null, created: null }, { status: 422 });
  const db = getDb();
  const actor = actorOf(me, request);
  const input = parsed.data;
  if (input.intent === "create") {
    const created = await createApiKey(db, actor, input);
    return data<ActionAnswer>({ ok: true, errors: {}, message: `Created ${created.scope} key “${created.name}”.`, created }, { headers: NO_STORE });
  }
  if (input.intent === "revoke") {
    const result = await revokeApiKey(db, actor, input.key_id);
    if (!result.ok) return data<ActionAnswer>({ ok: false, errors: { [result.field]: result.message }, message: null, created: null }, { status: 422 });
    return data<ActionAnswer>({ ok: true, errors: {}, message: "Revoked: the key is refused from now on.", created: null });
  }
  const result = await rotateApiKey(db, actor, input.key_id, ROTATION_OVERLAPS[input.overlap]);
  if (!result.ok) return data<ActionAnswer>({ ok: false, errors: { [result.field]: result.message }, message: null, created: null }, { status: 422 });
  return data<ActionAnswer>(
    { ok: true, errors: {}, message: `Rotated: the old key keeps working for ${input.overlap}, then expires.`, created: result.created },
    { headers: NO_STORE },
  );
}

type KeyRow = ReturnType<typeof useLoaderData<typeof loader>>["keys"][number];

const STATUS_TONE: Record<ApiKeyStatus, "good" | "warn" | "bad" | "neutral"> = { active: "good", expiring: "warn", expired: "neutral", revoked: "bad" };
const when = (value: string | null) => (value ? value.replace("T", " ").slice(0, 16) : "—");
const button = "rounded border border-slate-300 px-2 py-0.5 hover:bg-slate-100 disabled:opacity-60";

function KeyActions({ row, busy }: { row: KeyRow; busy: boolean }) {
  if (row.status === "revoked" || row.status === "expired") return null;
  const label = row.prefix ? `${row.prefix}…` : row.name;
  const envNote = row.fromEnvironment ? " It comes from the environment: it works again on the next start unless the variable is changed." : "";
  return (
    <div className="flex items-center gap-2 whitespace-nowrap">
      <Form method="post" className="flex items-center gap-1">
        <input type="hidden" name="intent" value="rotate" />
        <input type="hidden" name="key_id" value={row.id} />
        <label className="sr-only" htmlFor={`overlap-${row.id}`}>Overlap for {label}</label>
        <select id={`overlap-${row.id}`} name="overlap" defaultValue="24h" className="rounded border border-slate-300 px-1 py-0.5">
          {Object.keys(ROTATION_OVERLAPS).map((o) => <option key={o} value={o}>{o} overlap</option>)}
        </select>
        <button type="submit" disabled={busy} className={button} aria-label={`Rotate ${label}`}>Rotate</button>
      </Form>
      <Form
        method="post"
        onSubmit={(event) => {
          if (!window.confirm(`Revoke ${label}? Every call with it is refused at once.${envNote}`)) event.preventDefault();
        }}
      >
        <input type="hidden" name="intent" value="revoke" />
        <input type="hidden" name="key_id" value={row.id} />
        <button type="submit" disabled={busy} className={`${button} text-rose-700`} aria-label={`Revoke ${label}`}>Revoke</button>
      </Form>
    </div>
  );
}

function columns(busy: boolean): ColumnDef<KeyRow>[] {
  return [
    {
      id: "key",
      header: "Key",
      enableSorting: false,
      cell: ({ row }) => (
        <>
          <span className="block">{row.original.name}</span>
          <code className="text-xs text-slate-600">{row.original.prefix ? `${row.original.prefix}…` : "set by the environment"}</code>
        </>
      ),
    },
    { id: "scope", header: "Scope", enableSorting: false, cell: ({ row }) => <span title={SCOPE_DESCRIPTIONS[row.original.scope]}>{row.original.scope}</span> },
    {
      id: "status",
      header: "Status",
      enableSorting: false,
      cell: ({ row }) => (
        <>
          <Badge tone={STATUS_TONE[row.original.status]}>{row.original.status}</Badge>
          {row.original.status === "expiring" ? <span className="ml-1 text-xs text-slate-600">until {when(row.original.expiresAt)}</span> : null}
        </>
      ),
    },
    {
      id: "created",
      header: "Created (UTC)",
      enableSorting: false,
      cell: ({ row }) => (
        <>
          <span className="block">{when(row.original.createdAt)}</span>
          <span className="text-xs text-slate-600">by {row.original.createdBy ?? (row.original.fromEnvironment ? "the environment" : "a removed account")}</span>
        </>
      ),
    },
    { id: "used", header: "Last used (UTC)", enableSorting: false, cell: ({ row }) => when(row.original.lastUsedAt) },
    { id: "actions", header: () => <span className="sr-only">Actions</span>, enableSorting: false, cell: ({ row }) => <KeyActions row={row.original} busy={busy} /> },
  ];
}

function NewKey({ created }: { created: CreatedApiKey }) {
  return (
    <div role="status" data-testid="new-api-key" className="mb-4 rounded border border-amber-300 bg-amber-50 px-3 py-2 text-sm text-amber-900">
      <p className="font-medium">Copy the key now: it is shown this once and cannot be shown again.</p>
      <p className="mt-1">
        {created.name} ({created.scope}):{" "}
        <code data-testid="new-api-key-value" className="select-all break-all rounded bg-white px-1 py-0.5 font-mono text-slate-900">{created.key}</code>
      </p>
    </div>
  );
}

export default function ApiKeysPage() {
  const { keys } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const navigation = useNavigation();
  const busy = navigation.state === "submitting";
  const errors = result?.errors ?? {};
  return (
    <>
      <PageHeader
        title="API keys"
        description="Bearer keys for the /api/v1 endpoints. A key is stored as a hash: its full value is shown once, when it is made. Revoking takes effect on the next request."
      />
      {result?.message ? <p role="status" className="mb-3 rounded border border-emerald-200 bg-emerald-50 px-3 py-2 text-sm text-emerald-800">{result.message}</p> : null}
      {result?.created ? <NewKey created={result.created} /> : null}
      {errors.key_id || errors.overlap || errors.intent ? (
        <p role="alert" className="mb-3 rounded border border-rose-200 bg-rose-50 px-3 py-2 text-sm text-rose-800">{errors.key_id ?? errors.overlap ?? errors.intent}</p>
      ) : null}
      <Card title="Create a key" className="mb-4">
        <Form method="post" className="flex flex-wrap items-end gap-3">
          <input type="hidden" name="intent" value="create" />
          <label className="text-sm">
            <span className="block text-slate-700">Name (who uses it)</span>
            <input name="name" required maxLength={100} autoComplete="off" aria-invalid={errors.name ? true : undefined} className="mt-1 w-64 rounded border border-slate-300 px-2 py-1" />
            {errors.name ? <span role="alert" className="mt-0.5 block text-xs text-rose-700">{errors.name}</span> : null}
          </label>
          <label className="text-sm">
            <span className="block text-slate-700">Scope</span>
            <select name="scope" defaultValue="ingest" className="mt-1 rounded border border-slate-300 px-2 py-1">
              {API_KEY_SCOPES.map((s) => <option key={s} value={s}>{s}: {SCOPE_DESCRIPTIONS[s]}</option>)}
            </select>
            {errors.scope ? <span role="alert" className="mt-0.5 block text-xs text-rose-700">{errors.scope}</span> : null}
          </label>
          <button type="submit" disabled={busy} className="rounded bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-500 disabled:opacity-60">
            {busy ? "Saving…" : "Create key"}
          </button>
        </Form>
      </Card>
      <Card title={`Keys (${keys.length})`}>
        <DataTable columns={columns(busy)} data={keys} testId="api-keys-table" caption="API keys" emptyTitle="No API keys" emptyHint="Create one above, or set TOKENBOARD_INGEST_KEY / TOKENBOARD_LEDGER_KEY." />
      </Card>
    </>
  );
}
