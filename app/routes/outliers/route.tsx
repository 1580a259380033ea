import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, Link, useLoaderData, useNavigation } from "@remix-run/react";
import { z } from "zod";
import { OutlierList } from "~/components/outliers/outlier-list";
import { MiniTable } from "~/components/ui/mini-table";
import { Card, PageHeader } from "~/components/ui/page";
import { RangeControl } from "~/components/ui/range-control";
import { ACTION_TYPE_NAMES } from "~/domain/action-types";
import { formatInt } from "~/domain/format";
import { bigintIdSchema, filterText } from "~/domain/inputs";
import { RULE_LABELS, RULE_NAMES } from "~/domain/outlier-rules";
import { parseRangeParams } from "~/domain/period";
import { STORABLE_TEXT } from "~/domain/storable-text";
import { can } from "~/domain/permissions";
import { actorOf, requireStaff } from "~/lib/auth.server";
import { getDb } from "~/lib/db.server";
import { formObject, parseWith } from "~/lib/validation";
import { acknowledgeOutlier, countOutliersByRule, listOutlierFlags, OUTLIER_SORTS } from "~/models/outlier-flags.server";

export const meta: MetaFunction = () => [{ title: "Outliers · tokenboard" }];

const PAGE_SIZE = 50;
const DEFAULT_DAYS = 90;
const blankToUndefined = (v: unknown) => (v === "" || v === null ? undefined : v);

const filterSchema = z.object({
  rule: z.preprocess(blankToUndefined, z.enum(RULE_NAMES, { errorMap: () => ({ message: `rule must be one of ${RULE_NAMES.join(", ")}` }) }).optional()),
  type: filterText(100),
  route: filterText(300),
  user: z.preprocess(blankToUndefined, z.string().trim().uuid("user must be a user id (UUID)").optional()),
  status: z.preprocess(blankToUndefined, z.enum(["open", "acknowledged", "all"], { errorMap: () => ({ message: "status must be open, acknowledged or all" }) }).default("open")),
  sort: z.preprocess(blankToUndefined, z.enum(OUTLIER_SORTS, { errorMap: () => ({ message: `sort must be one of ${OUTLIER_SORTS.join(", ")}` }) }).default("occurred_at")),
  dir: z.preprocess(blankToUndefined, z.enum(["asc", "desc"], { errorMap: () => ({ message: "dir must be asc or desc" }) }).default("desc")),
  page: z.preprocess(blankToUndefined, z.coerce.number({ invalid_type_error: "page must be a number" }).int("page must be a whole number").min(1, "page starts at 1").max(100_000).default(1)),
});

function describeErrors(errors: Record<string, string>): string {
  return Object.entries(errors).map(([field, message]) => (message.startsWith(field) ? message : `${field}: ${message}`)).join("; ");
}

export async function loader({ request }: LoaderFunctionArgs) {
  const staff = await requireStaff(request, "dashboard:read");
  const params = new URL(request.url).searchParams;
  const range = parseRangeParams(params, staff.timezone, new Date(), DEFAULT_DAYS);
  if (!range.ok) throw data({ message: `Invalid date range: ${describeErrors(range.errors)}` }, { status: 400 });
  const parsed = parseWith(filterSchema, Object.fromEntries(params));
  if (!parsed.ok) throw data({ message: `Invalid filter: ${describeErrors(parsed.errors)}` }, { status: 400 });
  const f = parsed.data;
  const filter = {
    rule: f.rule,
    actionType: f.type,
    route: f.route,
    userId: f.user,
    status: f.status === "all" ? undefined : f.status,
    start: range.range.start,
    end: range.range.end,
  };
  const db = getDb();
  const [list, counts] = await Promise.all([
    listOutlierFlags(db, filter, { sort: f.sort, desc: f.dir === "desc", page: f.page, pageSize: PAGE_SIZE, tz: range.range.tz }),
    countOutliersByRule(db, filter),
  ]);
  return {
    range: { from: range.range.from, to: range.range.to, tz: range.range.tz },
    filter: { rule: f.rule ?? "", type: f.type ?? "", route: f.route ?? "", user: f.user ?? "", status: f.status },
    sort: { id: f.sort, desc: f.dir === "desc" },
    page: { page: f.page, pageSize: PAGE_SIZE, total: list.total },
    flags: list.flags,
    counts: RULE_NAMES.map((rule) => {
      const c = counts.find((x) => x.rule === rule);
      return { rule, label: RULE_LABELS[rule], open: c?.open ?? 0, acknowledged: c?.acknowledged ?? 0 };
    }),
    canAcknowledge: can(staff.role, "outliers:acknowledge"),
  };
}

const acknowledgeSchema = z.object({
  intent: z.literal("acknowledge", { errorMap: () => ({ message: "unknown action" }) }),
  id: bigintIdSchema,
  note: z.string({ required_error: "a note is required" }).trim().min(1, "a note is required: say why this is fine or what was done").max(500, "the note is at most 500 characters").regex(STORABLE_TEXT, "the note must not contain NUL characters or invalid Unicode"),
});

export async function action({ request }: ActionFunctionArgs) {
  const staff = await requireStaff(request, "outliers:acknowledge");
  const parsed = parseWith(acknowledgeSchema, formObject(await request.formData()));
  if (!parsed.ok) return data({ ok: false as const, errors: parsed.errors }, { status: 400 });
  const result = await acknowledgeOutlier(getDb(), actorOf(staff, request), parsed.data.id, parsed.data.note);
  if (!result.ok) return data({ ok: false as const, errors: { id: `flag ${parsed.data.id} does not exist` } }, { status: 404 });
  return { ok: true as const, message: result.alreadyAcknowledged ? "already acknowledged" : "acknowledged" };
}

const selectClass = "mt-0.5 block rounded-md border border-slate-300 px-2 py-1 text-sm";

function Filters({ filter, range }: { filter: ReturnType<typeof useLoaderData<typeof loader>>["filter"]; range: { from: string; to: string; tz: string } }) {
  return (
    <Form method="get" className="flex flex-wrap items-end gap-2" aria-label="Filter outliers">
      <input type="hidden" name="from" value={range.from} />
      <input type="hidden" name="to" value={range.to} />
      <input type="hidden" name="tz" value={range.tz} />
      <label className="text-xs font-medium text-slate-600">
        Rule
        <select name="rule" defaultValue={filter.rule} key={`rule-${filter.rule}`} className={selectClass}>
          <option value="">All rules</option>
          {RULE_NAMES.map((r) => (
            <option key={r} value={r}>{RULE_LABELS[r]}</option>
          ))}
        </select>
      </label>
      <label className="text-xs font-medium text-slate-600">
        Status
        <select name="status" defaultValue={filter.status} key={`status-${filter.status}`} className={selectClass}>
          <option value="open">Open</option>
          <option value="acknowledged">Acknowledged</option>
          <option value="all">All</option>
        </select>
      </label>
      <label className="text-xs font-medium text-slate-600">
        Action type
        <input name="type" list="outlier-type-options" defaultValue={filter.type} key={`type-${filter.type}`} spellCheck={false} className={`${selectClass} w-48`} />
        <datalist id="outlier-type-options">
          {ACTION_TYPE_NAMES.map((n) => (
            <option key={n} value={n} />
          ))}
        </datalist>
      </label>
      <label className="text-xs font-medium text-slate-600">
        Route
        <input name="route" defaultValue={filter.route} key={`route-${filter.route}`} spellCheck={false} className={`${selectClass} w-52`} />
      </label>
      <label className="text-xs font-medium text-slate-600">
        User id
        <input name="user" defaultValue={filter.user} key={`user-${filter.user}`} spellCheck={false} className={`${selectClass} w-72 font-mono`} />
      </label>
      <button type="submit" className="rounded-md bg-slate-800 px-3 py-1.5 text-sm font-medium text-white hover:bg-slate-700">Filter</button>
      <Link to={`?${new URLSearchParams(range).toString()}`} className="px-2 py-1.5 text-sm text-indigo-700 hover:underline">Clear</Link>
    </Form>
  );
}

export default function Outliers() {
  const { range, filter, sort, page, flags, counts, canAcknowledge } = useLoaderData<typeof loader>();
  const navigation = useNavigation();
  const loading = navigation.state === "loading" && navigation.location?.pathname === "/outliers";
  const ruleHref = (rule: string) => `?${new URLSearchParams({ ...range, ...(filter.type ? { type: filter.type } : {}), ...(filter.route ? { route: filter.route } : {}), ...(filter.user ? { user: filter.user } : {}), status: filter.status, rule }).toString()}`;
  const totalOpen = counts.reduce((n, c) => n + c.open, 0);
  return (
    <>
      <PageHeader
        title="Outliers"
        description={`Flags written by the detection job (every 5 minutes, or npm run cli -- detect-outliers), ${range.from} to ${range.to} (${range.tz}). ${formatInt(totalOpen)} open.`}
        actions={<RangeControl value={range} />}
      />
      {/* grid-cols-1 is minmax(0, 1fr): a wide table scrolls inside its card instead of widening the page. */}
      <div className="grid grid-cols-1 gap-4">
        <Card title="Flags per rule" className="max-w-xl">
          <MiniTable testId="outlier-counts" caption="Flags per rule in this range" head={["Rule", "Open", "Ack."]}>
            {counts.map((c) => (
              <tr key={c.rule} className={filter.rule === c.rule ? "bg-indigo-50" : undefined}>
                <td className="py-1">
                  <Link to={ruleHref(c.rule)} className="text-indigo-700 hover:underline">{c.label}</Link>
                </td>
                <td className="py-1 text-right tabular-nums">{formatInt(c.open)}</td>
                <td className="py-1 text-right tabular-nums text-slate-500">{formatInt(c.acknowledged)}</td>
              </tr>
            ))}
          </MiniTable>
          <p className="mt-3 text-xs text-slate-500">Days of the daily rules are UTC days. Thresholds and reasons: docs/outliers.md.</p>
        </Card>
        <Card title={`Flags${filter.rule ? ` · ${RULE_LABELS[filter.rule as keyof typeof RULE_LABELS]}` : ""}`}>
          <div className="mb-3">
            <Filters filter={filter} range={range} />
          </div>
          <div className={loading ? "opacity-60 transition-opacity" : undefined} aria-busy={loading}>
            <OutlierList flags={flags} sort={sort} page={page} canAcknowledge={canAcknowledge}
              emptyHint="Nothing matches these filters in this range. Widen the dates or clear the filters." />
          </div>
        </Card>
      </div>
    </>
  );
}
