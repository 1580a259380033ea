import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Link, useLoaderData, useNavigation } from "@remix-run/react";
import type { ColumnDef } from "@tanstack/react-table";
import { CategoryBars, DayLines } from "~/components/charts/simple-charts";
import { DataTable } from "~/components/data-table/data-table";
import { GeneralErrorBoundary } from "~/components/error-boundary";
import { Card, EmptyState, Kpi, PageHeader } from "~/components/ui/page";
import { RangeControl } from "~/components/ui/range-control";
import { formatInt, formatMoneyFromCents, formatUsdFromCents } from "~/domain/format";
import { parseRangeParams } from "~/domain/period";
import { billingOverview } from "~/features/money/billing.server";
import { PRICE_CURRENCY, type MarginRow } from "~/features/money/rules";
import { requireStaff } from "~/lib/auth.server";
import { getDb } from "~/lib/db.server";

export const meta: MetaFunction = () => [{ title: "Billing · tokenboard" }];

export async function loader({ request }: LoaderFunctionArgs) {
  const staff = await requireStaff(request, "billing:read");
  const parsed = parseRangeParams(new URL(request.url).searchParams, staff.timezone);
  if (!parsed.ok) throw data({ message: `Invalid date range: ${Object.entries(parsed.errors).map(([k, m]) => `${k} ${m}`).join("; ")}` }, { status: 400 });
  const range = parsed.range;
  const b = await billingOverview(getDb(), range);
  const last = b.liability[b.liability.length - 1];
  return {
    range: { from: range.from, to: range.to, tz: range.tz },
    money: b.money,
    flows: b.flows,
    outstanding: last?.outstanding ?? 0,
    liability: b.liability,
    pricePerToken: b.pricePerToken,
    priceBasis: b.priceBasis,
    byType: b.byType,
    byModel: b.byModel,
    totalCostCents: b.totalCostCents,
    totalValueCents: b.pricePerToken === null ? null : b.byType.reduce((sum, r) => sum + (r.value_cents ?? 0), 0),
    topSpenders: b.topSpenders,
    overdrawn: b.overdrawn.map((o) => ({ ...o, since: o.since?.toISOString() ?? null })),
    overdrawnCount: b.overdrawnCount,
  };
}

const when = (iso: string) => iso.replace("T", " ").slice(0, 16);
const usdOrDash = (cents: number | null) => (cents === null ? "—" : formatUsdFromCents(cents));
const signed = (cents: number | null) => (cents === null ? "—" : <span className={cents < 0 ? "text-rose-700" : "text-emerald-700"}>{formatUsdFromCents(cents)}</span>);

function marginColumns(label: string): ColumnDef<MarginRow>[] {
  return [
    { id: "key", header: label, cell: ({ row }) => row.original.key, enableSorting: false },
    { id: "calls", header: "Calls", cell: ({ row }) => formatInt(row.original.calls), enableSorting: false, meta: { align: "right" } },
    { id: "charged", header: "Tokens charged", cell: ({ row }) => formatInt(row.original.charged_tokens), enableSorting: false, meta: { align: "right" } },
    { id: "value", header: "Value", cell: ({ row }) => usdOrDash(row.original.value_cents), enableSorting: false, meta: { align: "right" } },
    { id: "cost", header: "Provider cost", cell: ({ row }) => formatUsdFromCents(row.original.cost_cents), enableSorting: false, meta: { align: "right" } },
    { id: "margin", header: "Margin", cell: ({ row }) => signed(row.original.margin_cents), enableSorting: false, meta: { align: "right" } },
  ];
}
const typeColumns = marginColumns("Action type");
const modelColumns = marginColumns("Model");

type LiabilityRow = { date: string; outstanding: number; change: number };
const liabilityColumns: ColumnDef<LiabilityRow>[] = [
  { id: "date", header: "Day", cell: ({ row }) => row.original.date, enableSorting: false },
  { id: "outstanding", header: "Outstanding", cell: ({ row }) => <span className={row.original.outstanding < 0 ? "text-rose-700" : ""}>{formatInt(row.original.outstanding)}</span>, enableSorting: false, meta: { align: "right" } },
  { id: "change", header: "Change", cell: ({ row }) => `${row.original.change > 0 ? "+" : ""}${formatInt(row.original.change)}`, enableSorting: false, meta: { align: "right" } },
];

function userLink(userId: string, email: string | null) {
  return <Link to={`/users/${userId}`} className="text-indigo-700 hover:underline" title={userId}>{email ?? `${userId.slice(0, 8)}…`}</Link>;
}

function MarginCard({ title, rows, columns, testId, chartLabel }: { title: string; rows: MarginRow[]; columns: ColumnDef<MarginRow>[]; testId: string; chartLabel: string }) {
  const points = rows.slice(0, 12).map((r) => ({ name: r.key, value: (r.value_cents ?? 0) / 100, cost: r.cost_cents / 100, margin: (r.margin_cents ?? 0) / 100 }));
  return (
    <Card title={title}>
      {rows.length === 0 ? (
        <EmptyState title="No calls in this range">Pick a wider range above.</EmptyState>
      ) : (
        <div className="grid grid-cols-1 gap-4 2xl:grid-cols-2">
          <CategoryBars data={points} label={chartLabel} format={(n) => formatUsdFromCents(Math.round(n * 100))}
            bars={[{ key: "value", name: "Value of tokens", color: "#4f46e5" }, { key: "cost", name: "Provider cost", color: "#ea580c" }, { key: "margin", name: "Margin", color: "#16a34a" }]} />
          <DataTable columns={columns} data={rows} testId={testId} caption={title} />
        </div>
      )}
    </Card>
  );
}

export default function Billing() {
  const d = useLoaderData<typeof loader>();
  const navigation = useNavigation();
  const loading = navigation.state === "loading" && navigation.location?.pathname === "/billing";
  const usd = d.money.find((m) => m.currency === PRICE_CURRENCY);
  const otherMoney = d.money.filter((m) => m.currency !== PRICE_CURRENCY);
  const margin = d.totalValueCents === null ? null : d.totalValueCents - d.totalCostCents;
  return (
    <>
      <PageHeader title="Billing" description={`${d.range.from} to ${d.range.to} (${d.range.tz}) · tokens and money from the ledger, provider cost from usage`}
        actions={<RangeControl value={d.range} />} />
      {loading ? <p role="status" className="mb-2 text-sm text-slate-500">Loading billing figures…</p> : null}
      <div className={`grid grid-cols-2 gap-3 md:grid-cols-4 ${loading ? "opacity-60" : ""}`}>
        <Kpi label="Money received" value={formatMoneyFromCents(usd?.paid_cents ?? 0, PRICE_CURRENCY)} testId="kpi-money"
          hint={otherMoney.length ? otherMoney.map((m) => formatMoneyFromCents(m.paid_cents, m.currency)).join(" · ") : `${formatInt(usd?.purchases ?? 0)} purchases`} />
        <Kpi label="Tokens sold" value={formatInt(d.flows.sold)} testId="kpi-sold" />
        <Kpi label="Granted" value={formatInt(d.flows.granted)} testId="kpi-granted" />
        <Kpi label="Charged" value={formatInt(d.flows.charged)} testId="kpi-charged" hint="usage less corrections" />
        <Kpi label="Expired" value={formatInt(d.flows.expired)} testId="kpi-expired" hint={`${formatInt(d.flows.deducted)} deducted by staff`} />
        <Kpi label="Outstanding" value={formatInt(d.outstanding)} testId="kpi-outstanding" hint={`tokens held at ${d.range.to}`} />
        <Kpi label="Provider cost" value={formatUsdFromCents(d.totalCostCents)} testId="kpi-cost" />
        <Kpi label="Margin" value={margin === null ? "—" : formatUsdFromCents(margin)} testId="kpi-margin" hint={margin === null ? "no priced purchases yet" : "value of charged tokens − cost"} />
      </div>

      <div className={`mt-4 ${loading ? "opacity-60" : ""}`}>
        <Card title="Outstanding tokens (liability) at each day's end">
          <div className="grid grid-cols-1 gap-4 lg:grid-cols-[minmax(0,1fr)_22rem]">
            <DayLines data={d.liability} lines={[{ key: "outstanding", name: "Outstanding tokens", color: "#4f46e5" }]} label="Sum of every balance at the end of each day" />
            <div className="max-h-64 overflow-y-auto">
              <DataTable columns={liabilityColumns} data={[...d.liability].reverse()} testId="liability-table" caption="Outstanding tokens per day, newest first" />
            </div>
          </div>
          <p className="mt-2 text-xs text-slate-500">Σ of every balance; overdrawn balances count as negative.</p>
        </Card>
      </div>

      <div className={`mt-4 grid grid-cols-1 gap-4 2xl:grid-cols-3 [&>*]:min-w-0 ${loading ? "opacity-60" : ""}`}>
        <Card title="Money received by currency">
          <div className="overflow-x-auto"><table className="w-full text-sm" data-testid="money-by-currency">
            <thead>
              <tr className="text-left text-xs uppercase text-slate-500">
                <th scope="col" className="py-1">Currency</th>
                <th scope="col" className="py-1 pl-3 text-right">Purchases</th>
                <th scope="col" className="py-1 pl-3 text-right">Tokens sold</th>
                <th scope="col" className="py-1 pl-3 text-right">Received</th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {d.money.length === 0 ? (
                <tr><td colSpan={4} className="py-3 text-center text-slate-500">No purchases in this range.</td></tr>
              ) : d.money.map((m) => (
                <tr key={m.currency}>
                  <td className="py-1">{m.currency}</td>
                  <td className="py-1 pl-3 text-right tabular-nums">{formatInt(m.purchases)}</td>
                  <td className="py-1 pl-3 text-right tabular-nums">{formatInt(m.tokens)}</td>
                  <td className="py-1 pl-3 text-right tabular-nums" data-testid={`money-${m.currency}`}>{formatMoneyFromCents(m.paid_cents, m.currency)}</td>
                </tr>
              ))}
            </tbody>
          </table></div>
          <p className="mt-3 text-xs text-slate-500" data-testid="price-basis">
            {d.pricePerToken === null
              ? `No ${PRICE_CURRENCY} purchase with a price yet, so tokens have no money value and margins are not shown.`
              : <>Average purchase price: {formatUsdFromCents(d.pricePerToken * 1_000_000)} per million tokens = all {PRICE_CURRENCY} money ever received for purchases ({formatUsdFromCents(d.priceBasis.paid_cents)}) ÷ the tokens those purchases bought ({formatInt(d.priceBasis.tokens)}). Value of tokens charged = tokens charged × that price; margin = value − provider cost. Other currencies are not converted.</>}
          </p>
        </Card>
        <Card title="Top users by spend">
          {d.topSpenders.length === 0 ? (
            <EmptyState title="No tokens were charged in this range" />
          ) : (
            <div className="overflow-x-auto"><table className="w-full text-sm" data-testid="top-spenders">
              <thead>
                <tr className="text-left text-xs uppercase text-slate-500">
                  <th scope="col" className="py-1">Balance owner</th>
                  <th scope="col" className="py-1 pl-3 text-right">Tokens charged</th>
                  <th scope="col" className="py-1 pl-3 text-right">Value</th>
                  <th scope="col" className="py-1 pl-3 text-right">Paid in range ({PRICE_CURRENCY})</th>
                </tr>
              </thead>
              <tbody className="divide-y divide-slate-100">
                {d.topSpenders.map((s) => (
                  <tr key={s.user_id}>
                    <td className="max-w-[16rem] truncate py-1">{userLink(s.user_id, s.email)}</td>
                    <td className="py-1 pl-3 text-right tabular-nums">{formatInt(s.charged)}</td>
                    <td className="py-1 pl-3 text-right tabular-nums">{usdOrDash(s.value_cents)}</td>
                    <td className="py-1 pl-3 text-right tabular-nums">{formatUsdFromCents(s.paid_cents)}</td>
                  </tr>
                ))}
              </tbody>
            </table></div>
          )}
        </Card>
        <Card title={`Overdrawn balances now (${formatInt(d.overdrawnCount)})`}>
          {d.overdrawn.length === 0 ? (
            <EmptyState title="No balance is below zero" />
          ) : (
            <div className="overflow-x-auto"><table className="w-full text-sm" data-testid="overdrawn-users">
              <thead>
                <tr className="text-left text-xs uppercase text-slate-500">
                  <th scope="col" className="py-1">Balance owner</th>
                  <th scope="col" className="py-1 pl-3 text-right">Balance</th>
                  <th scope="col" className="py-1 pl-3 text-right">Overdrawn since (UTC)</th>
                </tr>
              </thead>
              <tbody className="divide-y divide-slate-100">
                {d.overdrawn.map((o) => (
                  <tr key={o.user_id}>
                    <td className="max-w-[16rem] truncate py-1">{userLink(o.user_id, o.email)}</td>
                    <td className="py-1 pl-3 text-right font-medium tabular-nums text-rose-700">{formatInt(o.balance)}</td>
                    <td className="py-1 pl-3 text-right tabular-nums">{o.since ? when(o.since) : "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table></div>
          )}
        </Card>
      </div>

      <div className={`mt-4 grid grid-cols-1 gap-4 ${loading ? "opacity-60" : ""}`}>
        <MarginCard title="Provider cost and margin by action type" rows={d.byType} columns={typeColumns} testId="margin-by-type" chartLabel="Value of tokens charged, provider cost and margin per action type" />
        <MarginCard title="Provider cost and margin by model" rows={d.byModel} columns={modelColumns} testId="margin-by-model" chartLabel="Value of tokens charged, provider cost and margin per model" />
      </div>
      <p className="mt-2 text-xs text-slate-500">
        Tokens charged: successful calls of AI action types, at the type's override where one is set, else their tokens (the charging rule). Provider cost: every call in the range, failed ones included, as priced in the usage rollups.
      </p>
    </>
  );
}

export function ErrorBoundary() {
  return <GeneralErrorBoundary />;
}
