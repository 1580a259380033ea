import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ReferenceLine, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { formatCompact, formatInt } from "~/domain/format";

/** One or more lines over days (`date` on each point); a zero line shows where a sum goes negative. */
export function DayLines({ data, lines, height = 240, label, format = formatInt }: {
  data: readonly { date: string }[];
  lines: { key: string; name: string; color: string }[];
  height?: number;
  label: string;
  format?: (n: number) => string;
}) {
  return (
    <div role="img" aria-label={label} style={{ height }}>
      <ResponsiveContainer width="100%" height="100%">
        <LineChart data={[...data]} margin={{ top: 8, right: 12, bottom: 0, left: 4 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e2e8f0" />
          <XAxis dataKey="date" tick={{ fontSize: 11 }} tickFormatter={(d: string) => d.slice(5)} minTickGap={16} />
          <YAxis tick={{ fontSize: 11 }} tickFormatter={(v: number) => formatCompact(v)} width={52} />
          <Tooltip formatter={(v) => format(Number(v))} labelClassName="text-xs" contentStyle={{ fontSize: 12 }} />
          <ReferenceLine y={0} stroke="#94a3b8" />
          {lines.length > 1 ? <Legend wrapperStyle={{ fontSize: 11 }} /> : null}
          {lines.map((l) => (
            <Line key={l.key} type="stepAfter" dataKey={l.key} name={l.name} stroke={l.color} strokeWidth={2} dot={false} isAnimationActive={false} />
          ))}
        </LineChart>
      </ResponsiveContainer>
    </div>
  );
}

/** Grouped bars per category (`name` on each point). */
export function CategoryBars({ data, bars, height = 240, label, format = formatInt }: {
  data: Record<string, number | string>[];
  bars: { key: string; name: string; color: string }[];
  height?: number;
  label: string;
  format?: (n: number) => string;
}) {
  return (
    <div role="img" aria-label={label} style={{ height }}>
      <ResponsiveContainer width="100%" height="100%">
        <BarChart data={data} margin={{ top: 8, right: 12, bottom: 0, left: 4 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e2e8f0" />
          <XAxis dataKey="name" tick={{ fontSize: 10 }} interval={0} angle={-20} textAnchor="end" height={56} />
          <YAxis tick={{ fontSize: 11 }} tickFormatter={(v: number) => format(v)} width={64} />
          <Tooltip formatter={(v) => format(Number(v))} labelClassName="text-xs" contentStyle={{ fontSize: 12 }} />
          <ReferenceLine y={0} stroke="#94a3b8" />
          <Legend wrapperStyle={{ fontSize: 11 }} />
          {bars.map((b) => (
            <Bar key={b.key} dataKey={b.key} name={b.name} fill={b.color} isAnimationActive={false} />
          ))}
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}
