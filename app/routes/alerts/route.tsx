import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import type { ColumnDef } from "@tanstack/react-table";
import { z } from "zod";
import { DataTable } from "~/components/data-table/data-table";
import { Badge, Card, PageHeader } from "~/components/ui/page";
import { listDeliveries } from "~/features/alerts/outbox.server";
import {
  describeChannels,
  listBalanceThresholds,
  previewBalanceThreshold,
  removeBalanceThreshold,
  resendAlertDelivery,
  saveBalanceThreshold,
  type BalancePreview,
} from "~/features/alerts/service.server";
import { RULE_CHANNELS, silenceRuleSchema, spendRuleSchema } from "~/features/alerts/rules";
import { createAlertRule, createSpendRule, deleteAlertRule, listAlertRules, muteAlertRule, previewSpendRule } from "~/features/alerts/spend.server";
import { listReportSubscriptions, subscribeMonthlyReport } from "~/features/alerts/reports.server";
import { isValidTimeZone } from "~/domain/period";
import { actorOf, requireStaff } from "~/lib/auth.server";
import { getDb } from "~/lib/db.server";
import { getEnv } from "~/lib/env.server";
import { formObject, parseWith } from "~/lib/validation";

export const meta: MetaFunction = () => [{ title: "Alerts · tokenboard" }];

export async function loader({ request }: LoaderFunctionArgs) {
  await requireStaff(request, "alerts:manage");
  const db = getDb();
  const [deliveries, thresholds, rules, subscriptions] = await Promise.all([listDeliveries(db), listBalanceThresholds(db), listAlertRules(db), listReportSubscriptions(db)]);
  return {
    subscriptions: subscriptions.map((s) => ({ id: s.id, name: s.name, zone: s.zone, channel: s.channel })),
    rules: rules.map((r) => ({
      id: r.id,
      name: r.name,
      channel: r.channel,
      summary: describeRule(r.type, r.params),
      muted_until: r.muted_until?.toISOString() ?? null,
    })),
    channels: describeChannels(),
    defaultThreshold: getEnv().TOKENBOARD_LOW_BALANCE,
    thresholds: thresholds.map((t) => ({ ...t, updated_at: t.updated_at.toISOString() })),
    deliveries: deliveries.map((d) => ({ ...d, created_at: d.created_at.toISOString(), next_attempt_at: d.next_attempt_at.toISOString(), sent_at: d.sent_at?.toISOString() ?? null })),
  };
}

function describeRule(type: string, params: unknown): string {
  if (type === "ingest.silent") {
    const silence = silenceRuleSchema.safeParse(params).data;
    return silence ? `ingest silent for ${silence.minutes} minutes` : "unreadable";
  }
  const r = spendRuleSchema.safeParse(params).data;
  if (!r) return "unreadable";
  return `over ${r.threshold} tokens per ${r.period} in ${r.zone}, ${r.scope === "action_type" ? `action type ${r.action_type}` : r.scope === "per_user" ? "each user" : "total"}`;
}

const userId = z.string().trim().uuid("must be a user id (a UUID)");
const thresholdFields = {
  user_id: z.string().trim().optional().transform((v) => v || undefined).pipe(userId.optional()),
  threshold: z.coerce.number({ invalid_type_error: "must be a whole number of tokens" }).int("must be a whole number of tokens").min(0, "must be 0 or more").max(1e12, "is too large"),
};
const ruleId = z.string().uuid("must be a rule id");
const mutedUntil = z
  .string()
  .trim()
  .optional()
  .transform((v) => v || undefined)
  .pipe(z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/, "must be a date and time (UTC), e.g. 2026-12-31T18:00").transform((v) => new Date(`${v}Z`)).optional());
const spendFields = {
  name: z.string().trim().min(1, "is required").max(100, "must be at most 100 characters"),
  muted_until: mutedUntil,
  channel: z.enum(RULE_CHANNELS, { errorMap: () => ({ message: `must be one of ${RULE_CHANNELS.join(", ")}` }) }).default("all"),
};
const actionSchema = z.discriminatedUnion(
  "intent",
  [
    z.object({ intent: z.literal("preview"), ...thresholdFields }),
    z.object({ intent: z.literal("save-threshold"), ...thresholdFields, user_id: userId }),
    z.object({ intent: z.literal("remove-threshold"), user_id: userId }),
    z.object({ intent: z.literal("preview-spend"), ...spendFields, rule: spendRuleSchema }),
    z.object({ intent: z.literal("create-spend"), ...spendFields, rule: spendRuleSchema }),
    z.object({ intent: z.literal("create-silence"), ...spendFields, minutes: silenceRuleSchema.shape.minutes }),
    z.object({
      intent: z.literal("subscribe-report"),
      name: spendFields.name,
      channel: spendFields.channel,
      zone: z.string().trim().refine(isValidTimeZone, "must be an IANA time zone, e.g. Europe/Berlin"),
    }),
    z.object({ intent: z.literal("mute-rule"), rule_id: ruleId, mute_hours: z.coerce.number({ invalid_type_error: "must be a number of hours" }).int("must be whole hours").min(0, "must be 0 (unmute) or more").max(8_760, "must be at most a year") }),
    z.object({ intent: z.literal("delete-rule"), rule_id: ruleId }),
    z.object({ intent: z.literal("resend"), delivery_id: z.coerce.number({ invalid_type_error: "must be a delivery number" }).int().positive("must be a delivery number") }),
  ],
  { errorMap: () => ({ message: "unknown action" }) },
);

type ActionAnswer = {
  ok: boolean;
  errors: Record<string, string>;
  message: string | null;
  preview: (BalancePreview & { threshold: number; userId: string | null }) | null;
  spendPreview?: { alerts: number; periods: string[] } | null;
  /** The submitted intent, so a field error shows on the form that sent it (two forms have a threshold). */
  intent?: string;
};

/** The spend rule's fields arrive flat (period, zone, …); they are parsed as one `rule` object. */
function actionInput(form: Record<string, string>): Record<string, unknown> {
  if (form.intent !== "preview-spend" && form.intent !== "create-spend") return form;
  const { period, zone, threshold, scope, action_type, ...rest } = form;
  return { ...rest, rule: { period, zone, threshold, scope, action_type } };
}

export async function action({ request }: ActionFunctionArgs) {
  const me = await requireStaff(request, "alerts:manage");
  const form = formObject(await request.formData());
  const parsed = parseWith(actionSchema, actionInput(form));
  if (!parsed.ok) {
    const errors = Object.fromEntries(Object.entries(parsed.errors).map(([k, v]) => [k.replace(/^rule\./, ""), v]));
    return data<ActionAnswer>({ ok: false, errors, message: null, preview: null, intent: form.intent }, { status: 422 });
  }
  const db = getDb();
  const actor = actorOf(me, request);
  const input = parsed.data;
  if (input.intent === "preview" || input.intent === "save-threshold") {
    const preview = { ...(await previewBalanceThreshold(db, input.threshold, input.user_id)), threshold: input.threshold, userId: input.user_id ?? null };
    if (input.intent === "preview") return data<ActionAnswer>({ ok: true, errors: {}, message: null, preview });
    await saveBalanceThreshold(db, actor, input.user_id, input.threshold);
    return data<ActionAnswer>({ ok: true, errors: {}, message: `Saved: user ${input.user_id} is alerted below ${input.threshold} tokens.`, preview });
  }
  if (input.intent === "preview-spend" || input.intent === "create-spend") {
    const spendPreview = await previewSpendRule(db, input.rule);
    if (input.intent === "preview-spend") return data<ActionAnswer>({ ok: true, errors: {}, message: null, preview: null, spendPreview });
    await createSpendRule(db, actor, input.name, input.rule, input.muted_until ?? null, input.channel);
    return data<ActionAnswer>({ ok: true, errors: {}, message: `Saved the spend rule “${input.name}”.`, preview: null, spendPreview });
  }
  if (input.intent === "subscribe-report") {
    await subscribeMonthlyReport(db, actor, { name: input.name, zone: input.zone, channel: input.channel });
    return data<ActionAnswer>({ ok: true, errors: {}, message: `Subscribed “${input.name}”: each month's report is sent on the 1st in ${input.zone}.`, preview: null });
  }
  if (input.intent === "create-silence") {
    await createAlertRule(db, actor, "ingest.silent", { name: input.name, channel: input.channel, mutedUntil: input.muted_until ?? null }, { minutes: input.minutes });
    return data<ActionAnswer>({ ok: true, errors: {}, message: `Saved the rule “${input.name}”: an alert when no usage arrives for ${input.minutes} minutes.`, preview: null });
  }
  if (input.intent === "mute-rule" || input.intent === "delete-rule") {
    const until = input.intent === "mute-rule" && input.mute_hours > 0 ? new Date(Date.now() + input.mute_hours * 3_600_000) : null;
    const done = input.intent === "mute-rule" ? await muteAlertRule(db, actor, input.rule_id, until) : await deleteAlertRule(db, actor, input.rule_id);
    if (!done) return data<ActionAnswer>({ ok: false, errors: { rule_id: "is not a rule (it may have been deleted)" }, message: null, preview: null }, { status: 422 });
    return data<ActionAnswer>({ ok: true, errors: {}, message: input.intent === "delete-rule" ? "Deleted the rule." : until ? `Muted until ${until.toISOString().slice(0, 16)} UTC.` : "Unmuted.", preview: null });
  }
  if (input.intent === "remove-threshold") {
    if (!(await removeBalanceThreshold(db, actor, input.user_id))) return data<ActionAnswer>({ ok: false, errors: { user_id: "has no threshold of its own" }, message: null, preview: null }, { status: 422 });
    return data<ActionAnswer>({ ok: true, errors: {}, message: "Removed: the default threshold applies again.", preview: null });
  }
  if (!(await resendAlertDelivery(db, actor, input.delivery_id))) {
    return data<ActionAnswer>({ ok: false, errors: { delivery_id: "is not a failed or dead delivery" }, message: null, preview: null }, { status: 422 });
  }
  return data<ActionAnswer>({ ok: true, errors: {}, message: "Queued again: it is sent within seconds, under the same alert id.", preview: null });
}

type DeliveryRow = ReturnType<typeof useLoaderData<typeof loader>>["deliveries"][number];
const when = (value: string | null) => (value ? value.replace("T", " ").slice(0, 19) : "—");
const STATUS_TONE = { sent: "good", pending: "neutral", failed: "warn", dead: "bad" } as const;
const button = "rounded border border-slate-300 px-2 py-0.5 hover:bg-slate-100 disabled:opacity-60";

function deliveryColumns(busy: boolean): ColumnDef<DeliveryRow>[] {
  return [
    { id: "created", header: "Created (UTC)", enableSorting: false, cell: ({ row }) => when(row.original.created_at) },
    { id: "type", header: "Type", enableSorting: false, cell: ({ row }) => <code>{row.original.type}</code> },
    { id: "id", header: "Alert id", enableSorting: false, cell: ({ row }) => <code className="text-xs">{row.original.id}</code> },
    { id: "channel", header: "Channel", enableSorting: false, cell: ({ row }) => <span className="break-all text-xs">{row.original.channel_key}</span> },
    { id: "status", header: "Status", enableSorting: false, cell: ({ row }) => <Badge tone={STATUS_TONE[row.original.status]}>{row.original.status}</Badge> },
    { id: "attempts", header: "Attempts", enableSorting: false, cell: ({ row }) => row.original.attempts },
    { id: "code", header: "Response", enableSorting: false, cell: ({ row }) => row.original.last_status_code ?? "—" },
    { id: "error", header: "Last error", enableSorting: false, cell: ({ row }) => <span className="text-xs">{row.original.last_error ?? "—"}</span> },
    {
      id: "actions",
      header: () => <span className="sr-only">Actions</span>,
      enableSorting: false,
      cell: ({ row }) =>
        row.original.status === "failed" || row.original.status === "dead" ? (
          <Form method="post">
            <input type="hidden" name="intent" value="resend" />
            <input type="hidden" name="delivery_id" value={row.original.delivery_id} />
            <button type="submit" disabled={busy} className={button} aria-label={`Resend alert ${row.original.id}`}>Resend</button>
          </Form>
        ) : null,
    },
  ];
}

export default function AlertsPage() {
  const { channels, defaultThreshold, thresholds, deliveries, rules, subscriptions } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state === "submitting";
  const errors = result?.errors ?? {};
  const ruleForm = ["preview-spend", "create-spend", "create-silence"].includes(result?.intent ?? "");
  const reportForm = result?.intent === "subscribe-report";
  const thresholdErrors = ruleForm || reportForm ? {} : errors;
  const preview = result?.preview;
  return (
    <>
      <PageHeader title="Alerts" description="Balance crossings and other events are sent once per event to the channels below; failed deliveries are retried with backoff for at least 24 hours." />
      {result?.message ? <p role="status" className="mb-3 rounded border border-emerald-200 bg-emerald-50 px-3 py-2 text-sm text-emerald-800">{result.message}</p> : null}
      {errors.delivery_id || errors.intent ? <p role="alert" className="mb-3 rounded border border-rose-200 bg-rose-50 px-3 py-2 text-sm text-rose-800">{errors.delivery_id ?? errors.intent}</p> : null}
      <Card title="Channels" className="mb-4">
        {channels.length ? (
          <ul className="text-sm" data-testid="alert-channels">
            {channels.map((c) => <li key={c.key}><code>{c.kind}</code> {c.key !== c.kind ? c.key : "(from the environment)"} {c.signed ? "· signed" : ""}</li>)}
          </ul>
        ) : (
          <p className="text-sm text-slate-600">No channel: set TOKENBOARD_ALERT_WEBHOOK_URL, TOKENBOARD_ALERT_SLACK_WEBHOOK_URL or TOKENBOARD_SMTP_URL + TOKENBOARD_ALERT_EMAIL_TO.</p>
        )}
      </Card>
      <Card title={`Low-balance thresholds (default ${defaultThreshold} tokens)`} className="mb-4">
        <Form method="post" className="flex flex-wrap items-end gap-3">
          <label className="text-sm">
            <span className="block text-slate-700">User id (empty: preview for everyone)</span>
            <input name="user_id" autoComplete="off" defaultValue={preview?.userId ?? ""} aria-invalid={thresholdErrors.user_id ? true : undefined} className="mt-1 w-80 rounded border border-slate-300 px-2 py-1" />
            {thresholdErrors.user_id ? <span role="alert" className="mt-0.5 block text-xs text-rose-700">{thresholdErrors.user_id}</span> : null}
          </label>
          <label className="text-sm">
            <span className="block text-slate-700">Threshold (tokens)</span>
            <input name="threshold" inputMode="numeric" defaultValue={preview?.threshold ?? defaultThreshold} aria-invalid={thresholdErrors.threshold ? true : undefined} className="mt-1 w-32 rounded border border-slate-300 px-2 py-1" />
            {thresholdErrors.threshold ? <span role="alert" className="mt-0.5 block text-xs text-rose-700">{thresholdErrors.threshold}</span> : null}
          </label>
          <button type="submit" name="intent" value="preview" disabled={busy} className={button}>Preview</button>
          <button type="submit" name="intent" value="save-threshold" disabled={busy} className="rounded bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-500 disabled:opacity-60">Save</button>
        </Form>
        {preview ? (
          <p role="status" data-testid="alert-preview" className="mt-3 text-sm">
            Over the last {preview.days} days this threshold would have sent {preview.lows} balance.low alert{preview.lows === 1 ? "" : "s"} ({preview.users} user{preview.users === 1 ? "" : "s"}) and {preview.recoveries} balance.recovered.
          </p>
        ) : null}
        {thresholds.length ? (
          <ul className="mt-3 text-sm" data-testid="alert-thresholds">
            {thresholds.map((t) => (
              <li key={t.user_id} className="flex items-center gap-2">
                <code>{t.user_id}</code> below {t.threshold}
                <Form method="post">
                  <input type="hidden" name="intent" value="remove-threshold" />
                  <input type="hidden" name="user_id" value={t.user_id} />
                  <button type="submit" disabled={busy} className={button} aria-label={`Remove the threshold of ${t.user_id}`}>Remove</button>
                </Form>
              </li>
            ))}
          </ul>
        ) : null}
      </Card>
      <SpendRules rules={rules} busy={busy} errors={ruleForm || errors.rule_id ? errors : {}} spendPreview={result?.spendPreview ?? null} />
      <Card title="Monthly report" className="mb-4">
        <Form method="post" className="flex flex-wrap items-end gap-3 text-sm">
          <input type="hidden" name="intent" value="subscribe-report" />
          <label>
            <span className="block text-slate-700">Subscriber</span>
            <input name="name" maxLength={100} className="mt-1 w-48 rounded border border-slate-300 px-2 py-1" />
            {reportForm && errors.name ? <span role="alert" className="mt-0.5 block text-xs text-rose-700">{errors.name}</span> : null}
          </label>
          <label>
            <span className="block text-slate-700">Report zone</span>
            <input name="zone" defaultValue="UTC" className="mt-1 w-40 rounded border border-slate-300 px-2 py-1" />
            {reportForm && errors.zone ? <span role="alert" className="mt-0.5 block text-xs text-rose-700">{errors.zone}</span> : null}
          </label>
          <ChannelSelect field="mt-1 rounded border border-slate-300 px-2 py-1" />
          <button type="submit" disabled={busy} className={button}>Subscribe</button>
        </Form>
        {subscriptions.length ? (
          <ul className="mt-3 text-sm" data-testid="report-subscriptions">
            {subscriptions.map((s) => <li key={s.id}>{s.name}: on the 1st in {s.zone} → {s.channel === "all" ? "every channel" : s.channel}</li>)}
          </ul>
        ) : null}
      </Card>
      <Card title={`Delivery history (${deliveries.length})`}>
        <DataTable columns={deliveryColumns(busy)} data={deliveries} testId="alert-deliveries" caption="Alert deliveries" emptyTitle="No alerts sent yet" />
      </Card>
    </>
  );
}

type RuleRow = ReturnType<typeof useLoaderData<typeof loader>>["rules"][number];

function ChannelSelect({ field }: { field: string }) {
  return (
    <label>
      <span className="block text-slate-700">Channel</span>
      <select name="channel" defaultValue="all" className={field}>
        {RULE_CHANNELS.map((c) => <option key={c} value={c}>{c === "all" ? "every configured channel" : c}</option>)}
      </select>
    </label>
  );
}

function SpendRules({ rules, busy, errors, spendPreview }: { rules: RuleRow[]; busy: boolean; errors: Record<string, string>; spendPreview: { alerts: number; periods: string[] } | null }) {
  const field = "mt-1 rounded border border-slate-300 px-2 py-1";
  const error = (name: string) => (errors[name] ? <span role="alert" className="mt-0.5 block text-xs text-rose-700">{errors[name]}</span> : null);
  return (
    <Card title="Rules" className="mb-4">
      <Form method="post" className="flex flex-wrap items-end gap-3 text-sm">
        <label>
          <span className="block text-slate-700">Rule name</span>
          <input name="name" maxLength={100} className={`${field} w-48`} />
          {error("name")}
        </label>
        <label>
          <span className="block text-slate-700">Period</span>
          <select name="period" defaultValue="day" className={field}>
            <option value="day">day</option>
            <option value="month">month</option>
          </select>
          {error("period")}
        </label>
        <label>
          <span className="block text-slate-700">Zone</span>
          <input name="zone" defaultValue="UTC" className={`${field} w-40`} />
          {error("zone")}
        </label>
        <label>
          <span className="block text-slate-700">Over (tokens)</span>
          <input name="threshold" inputMode="numeric" className={`${field} w-32`} />
          {error("threshold")}
        </label>
        <label>
          <span className="block text-slate-700">Scope</span>
          <select name="scope" defaultValue="total" className={field}>
            <option value="total">total</option>
            <option value="action_type">one action type</option>
            <option value="per_user">each user</option>
          </select>
          {error("scope")}
        </label>
        <label>
          <span className="block text-slate-700">Action type (for that scope)</span>
          <input name="action_type" className={`${field} w-44`} />
          {error("action_type")}
        </label>
        <ChannelSelect field={field} />
        <label>
          <span className="block text-slate-700">Mute until (UTC, optional)</span>
          <input name="muted_until" type="datetime-local" className={field} />
          {error("muted_until")}
        </label>
        <button type="submit" name="intent" value="preview-spend" disabled={busy} className={button}>Preview rule</button>
        <button type="submit" name="intent" value="create-spend" disabled={busy} className="rounded bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-500 disabled:opacity-60">Save rule</button>
      </Form>
      <Form method="post" className="mt-4 flex flex-wrap items-end gap-3 border-t border-slate-200 pt-3 text-sm">
        <input type="hidden" name="intent" value="create-silence" />
        <label>
          <span className="block text-slate-700">Silence rule name</span>
          <input name="name" maxLength={100} className={`${field} w-48`} />
        </label>
        <label>
          <span className="block text-slate-700">No usage for (minutes)</span>
          <input name="minutes" inputMode="numeric" defaultValue="15" className={`${field} w-24`} />
          {error("minutes")}
        </label>
        <ChannelSelect field={field} />
        <button type="submit" disabled={busy} className={button}>Save silence rule</button>
      </Form>
      {spendPreview ? (
        <p role="status" data-testid="spend-preview" className="mt-3 text-sm">
          Over the last 30 days this rule would have sent {spendPreview.alerts} spend.threshold alert{spendPreview.alerts === 1 ? "" : "s"}
          {spendPreview.periods.length ? ` (${spendPreview.periods.join(", ")})` : ""}.
        </p>
      ) : null}
      {errors.rule_id ? <p role="alert" className="mt-2 text-sm text-rose-700">{errors.rule_id}</p> : null}
      {rules.length ? (
        <ul className="mt-3 space-y-1 text-sm" data-testid="spend-rules">
          {rules.map((r) => (
            <li key={r.id} className="flex flex-wrap items-center gap-2">
              <span className="font-medium">{r.name}</span>
              <span>{r.summary}</span>
              <span className="text-xs text-slate-600">→ {r.channel === "all" ? "every channel" : r.channel}</span>
              {r.muted_until && r.muted_until > new Date().toISOString() ? <Badge tone="warn">muted until {when(r.muted_until)}</Badge> : null}
              <Form method="post">
                <input type="hidden" name="intent" value="mute-rule" />
                <input type="hidden" name="rule_id" value={r.id} />
                <input type="hidden" name="mute_hours" value={r.muted_until ? "0" : "24"} />
                <button type="submit" disabled={busy} className={button}>{r.muted_until ? "Unmute" : "Mute 24 h"}</button>
              </Form>
              <Form method="post">
                <input type="hidden" name="intent" value="delete-rule" />
                <input type="hidden" name="rule_id" value={r.id} />
                <button type="submit" disabled={busy} className={button} aria-label={`Delete rule ${r.name}`}>Delete</button>
              </Form>
            </li>
          ))}
        </ul>
      ) : null}
    </Card>
  );
}
