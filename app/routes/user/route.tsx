import { randomUUID } from "node:crypto";
import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { useLoaderData } from "@remix-run/react";
import { z } from "zod";
import { PageHeader } from "~/components/ui/page";
import { RangeControl } from "~/components/ui/range-control";
import { amountSchema, balanceAfter, checkStaffAdjustment, idempotencyKeySchema, reasonSchema, STAFF_ADJUSTMENT_KINDS } from "~/domain/ledger";
import { calendarDateSchema } from "~/domain/inputs";
import { addDays, isValidTimeZone, parseRangeParams, startOfLocalDay, todayIn } from "~/domain/period";
import { can } from "~/domain/permissions";
import { pivotByDay } from "~/domain/series";
import { actorOf, requireStaff } from "~/lib/auth.server";
import { getDb } from "~/lib/db.server";
import { getEnv } from "~/lib/env.server";
import { formObject, parseWith } from "~/lib/validation";
import { payerOf, poolOf } from "~/models/charging.server";
import { adjustBalance, getBalance, listLedger } from "~/models/ledger.server";
import { listOutlierFlags } from "~/models/outlier-flags.server";
import { balanceHistory } from "~/features/money/balance-history.server";
import { supportCapFor } from "~/models/support-cap.server";
import { AdjustForm, LedgerCard, OutliersCard, PoolCard, RecentUsageCard, UsageCard } from "./sections";
import { BalanceHistoryCard, UpcomingExpiriesCard } from "./balance-history";
import { appUser, decodeCursor, encodeCursor, recentUsage, userIsKnown, userUsageByType, userUsagePerDay } from "./queries.server";

export const meta: MetaFunction = () => [{ title: "User · tokenboard" }];

const LEDGER_PAGE_SIZE = 15;
const USAGE_PAGE_SIZE = 20;

function userIdOrNotFound(value: string | undefined): string {
  const parsed = z.string().uuid().safeParse(value);
  if (!parsed.success) throw data({ message: "No such user: a user id is a UUID like 0b6f3c1e-8a2d-4f5b-9c7e-1d2a3b4c5d6e." }, { status: 404 });
  return parsed.data;
}

function badRequest(errors: Record<string, string>): never {
  throw data({ message: `Invalid address: ${Object.entries(errors).map(([k, m]) => `${k} ${m}`).join("; ")}` }, { status: 400 });
}

export async function loader({ request, params }: LoaderFunctionArgs) {
  const staff = await requireStaff(request, "dashboard:read");
  const userId = userIdOrNotFound(params.userId);
  const search = new URL(request.url).searchParams;
  const range = parseRangeParams(search, staff.timezone);
  if (!range.ok) badRequest(range.errors);
  const ledgerPage = z.coerce.number().int().min(1).max(100_000).safeParse(search.get("lpage") ?? "1");
  if (!ledgerPage.success) badRequest({ lpage: "must be a page number" });
  const cursor = decodeCursor(search.get("ucursor"));
  if (cursor === "invalid") badRequest({ ucursor: "is not a valid position; start from the first page" });

  const db = getDb();
  const seesLedger = can(staff.role, "ledger:read");
  // A member of a shared pool spends its owner's balance: the page shows and adjusts that one.
  const pool = seesLedger ? await poolOf(db, userId) : null;
  const payer = pool?.owner_id ?? userId;
  const [info, known, perDay, byType, usage, outliers, balance, ledger, history] = await Promise.all([
    appUser(db, userId),
    userIsKnown(db, userId),
    userUsagePerDay(db, userId, range.range),
    userUsageByType(db, userId, range.range),
    recentUsage(db, userId, cursor, USAGE_PAGE_SIZE),
    listOutlierFlags(db, { userId, status: "open" }, { pageSize: 20, tz: range.range.tz }),
    seesLedger ? getBalance(db, payer) : Promise.resolve(null),
    seesLedger ? listLedger(db, userId, ledgerPage.data, LEDGER_PAGE_SIZE) : Promise.resolve(null),
    seesLedger ? balanceHistory(db, payer, range.range) : Promise.resolve(null),
  ]);
  const nextUsage = new URLSearchParams(search);
  if (usage.next) nextUsage.set("ucursor", encodeCursor(usage.next));
  return {
    userId,
    info,
    known,
    role: staff.role,
    canAdjust: can(staff.role, "ledger:adjust"),
    supportLimit: getEnv().TOKENBOARD_SUPPORT_ADJUST_LIMIT,
    supportDailyLimit: getEnv().TOKENBOARD_SUPPORT_DAILY_LIMIT,
    // A fresh key per page view: a double submit of this form reuses it, so it makes one entry.
    idempotencyKey: randomUUID(),
    range: { from: range.range.from, to: range.range.to, tz: range.range.tz },
    series: pivotByDay(perDay.map((r) => ({ day: r.day, key: r.action_type, value: r.tokens })), range.range.from, range.range.to),
    byType,
    usage: { rows: usage.rows.map((r) => ({ ...r, created_at: r.created_at.toISOString() })), nextHref: usage.next ? `?${nextUsage.toString()}` : null, firstHref: cursor ? `?${withoutParam(search, "ucursor")}` : null },
    outliers: { flags: outliers.flags, total: outliers.total, canAcknowledge: can(staff.role, "outliers:acknowledge") },
    balance,
    history: history
      ? {
          opening: history.opening,
          days: history.days,
          upcoming: history.upcoming.map((u) => ({ ...u, expires_at: u.expires_at.toISOString(), created_at: u.created_at.toISOString() })),
          overdraft: history.overdraft ? { balance: history.overdraft.balance, since: history.overdraft.since?.toISOString() ?? null } : null,
        }
      : null,
    pool,
    ledger: ledger
      ? { page: ledgerPage.data, pageSize: LEDGER_PAGE_SIZE, total: ledger.total, entries: ledger.entries.map((e) => ({ id: e.id, kind: e.kind, amount: e.amount, balance_after: e.balance_after, reason: e.reason, actor_label: e.actor_label, forced: e.forced, expires_at: e.expires_at?.toISOString() ?? null, remaining: e.remaining, created_at: e.created_at.toISOString() })) }
      : null,
    adjusted: search.get("adjusted"),
  };
}

function withoutParam(search: URLSearchParams, name: string): string {
  const copy = new URLSearchParams(search);
  copy.delete(name);
  return copy.toString();
}

const adjustSchema = z
  .object({
    intent: z.enum(["confirm", "apply"], { errorMap: () => ({ message: "unknown step" }) }),
    kind: z.enum(STAFF_ADJUSTMENT_KINDS, { errorMap: () => ({ message: "choose grant or deduct" }) }),
    amount: amountSchema,
    reason: reasonSchema,
    idempotency_key: idempotencyKeySchema,
    expires_on: calendarDateSchema.optional().or(z.literal("").transform(() => undefined)),
    force: z.literal("on").optional(),
  })
  .refine((v) => !(v.expires_on && v.kind === "deduct"), { message: "only grants can expire", path: ["expires_on"] });

export type AdjustActionData =
  | { step: "confirm"; values: Record<string, string>; balance: number; balanceAfter: number; expiresAt: string | null; errors?: undefined; message?: undefined }
  | { step: "error"; errors: Record<string, string>; message: string | null; values: Record<string, string> };

export async function action({ request, params }: ActionFunctionArgs) {
  const staff = await requireStaff(request, "ledger:adjust");
  const userId = userIdOrNotFound(params.userId);
  const form = formObject(await request.formData());
  const fail = (status: number, errors: Record<string, string>, message: string | null = null) =>
    data<AdjustActionData>({ step: "error", errors, message, values: form }, { status });
  const parsed = parseWith(adjustSchema, form);
  if (!parsed.ok) return fail(422, parsed.errors);
  const input = parsed.data;
  const force = input.force === "on" && input.kind === "deduct";
  const check = checkStaffAdjustment(staff.role, input.amount, getEnv().TOKENBOARD_SUPPORT_ADJUST_LIMIT, force);
  if (!check.ok) return fail(check.status, { amount: check.message }, check.message);

  const tz = isValidTimeZone(staff.timezone) ? staff.timezone : "UTC";
  // A grant "expiring on" a day is usable through that whole local day.
  const expiresAt = input.expires_on ? startOfLocalDay(addDays(input.expires_on, 1), tz) : null;
  if (input.expires_on && input.expires_on < todayIn(tz)) return fail(422, { expires_on: "must be today or later" });

  const db = getDb();
  // A pool member's page adjusts the pool: its owner's balance.
  const payer = await payerOf(db, userId);
  if (input.intent === "confirm") {
    const balance = await getBalance(db, payer);
    const after = balanceAfter(balance, input.kind, input.amount);
    // Only a deduction can be refused: a grant to an overdrawn balance pays its debt.
    if (input.kind === "deduct" && after < 0 && !force) return fail(409, { amount: `would leave ${after.toLocaleString("en-US")}` }, `Insufficient balance: the user has ${balance.toLocaleString("en-US")} tokens. Deduct at most ${Math.max(0, balance).toLocaleString("en-US")}${staff.role === "admin" ? ", or tick “force” and give the reason" : ", or ask an admin"}.`);
    return data<AdjustActionData>({ step: "confirm", values: form, balance, balanceAfter: after, expiresAt: expiresAt?.toISOString() ?? null });
  }
  const outcome = await adjustBalance(db, actorOf(staff, request), {
    userId: payer,
    kind: input.kind,
    amount: input.amount,
    reason: input.reason,
    idempotencyKey: `ui:${input.idempotency_key}`,
    expiresAt,
    force,
    supportCap: supportCapFor(staff, getEnv().TOKENBOARD_SUPPORT_DAILY_LIMIT),
  });
  if (outcome.status === "cap_exceeded") return fail(403, { amount: outcome.message }, outcome.message);
  if (outcome.status === "insufficient") return fail(409, { amount: outcome.message }, outcome.message);
  if (outcome.status === "key_conflict") return fail(422, { idempotency_key: outcome.message }, "This form was already used for another adjustment. Reload the page and try again.");
  return redirect(`/users/${userId}?adjusted=${outcome.entry.id}`);
}

export default function UserPage() {
  const d = useLoaderData<typeof loader>();
  const title = d.info?.display_name || d.info?.email || d.userId;
  return (
    <>
      <PageHeader
        title={title}
        description={
          <>
            <span className="font-mono text-xs">{d.userId}</span>
            {d.info?.email && d.info.email !== title ? ` · ${d.info.email}` : ""}
            {d.known ? "" : " · this id has no usage or ledger entries yet"}
          </>
        }
        actions={<RangeControl value={d.range} />}
      />
      {d.adjusted ? <p role="status" className="mb-3 rounded border border-emerald-200 bg-emerald-50 px-3 py-2 text-sm text-emerald-800" data-testid="adjusted-banner">Saved: ledger entry #{d.adjusted}.</p> : null}
      {/* The usage chart beside the balance and the form; the tables below get the page's whole width. */}
      <div className="grid grid-cols-1 gap-4 xl:grid-cols-[minmax(0,1fr)_18rem]">
        <div className="min-w-0">
          <UsageCard series={d.series} byType={d.byType} range={d.range} />
        </div>
        <div className="space-y-4">
          {d.balance !== null ? (
            <section className={`rounded-lg border bg-white px-4 py-3 shadow-sm ${d.balance < 0 ? "border-rose-300" : "border-slate-200"}`}>
              <p className="text-xs font-medium uppercase tracking-wide text-slate-500">{d.pool && d.pool.owner_id !== d.userId ? "Balance of the shared pool" : "Balance"}</p>
              <p className={`mt-1 text-3xl font-semibold tabular-nums ${d.balance < 0 ? "text-rose-700" : ""}`} data-testid="balance">{d.balance.toLocaleString("en-US")}</p>
              <p className="text-xs text-slate-500">tokens</p>
              {d.history?.overdraft ? (
                <p className="mt-1 text-sm font-medium text-rose-700" data-testid="overdraft">
                  Overdrawn{d.history.overdraft.since ? ` since ${d.history.overdraft.since.replace("T", " ").slice(0, 16)} UTC` : ""}: the next grant or purchase pays this debt first.
                </p>
              ) : null}
            </section>
          ) : null}
          {d.history ? <UpcomingExpiriesCard upcoming={d.history.upcoming} /> : null}
          {d.canAdjust ? <AdjustForm key={d.idempotencyKey} idempotencyKey={d.idempotencyKey} role={d.role} supportLimit={d.supportLimit} supportDailyLimit={d.supportDailyLimit} /> : null}
        </div>
      </div>
      <div className="mt-4 space-y-4">
        {d.history ? <BalanceHistoryCard history={d.history} range={d.range} /> : null}
        {d.pool ? <PoolCard pool={d.pool} userId={d.userId} /> : null}
        <OutliersCard outliers={d.outliers} />
        {d.ledger ? <LedgerCard ledger={d.ledger} /> : null}
        <RecentUsageCard usage={d.usage} />
      </div>
    </>
  );
}
