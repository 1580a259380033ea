import { Area, AreaChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { formatCompact, formatInt } from "~/domain/format";
import { colorFor } from "./palette";


/** A stacked area chart over days; `series` names the keys of each point to stack. */
export function StackedSeries({ data, series, height = 280, label }: { data: Record<string, number | string>[]; series: string[]; height?: number; label: string }) {
  return (
    <div role="img" aria-label={label} style={{ height }}>
      <ResponsiveContainer width="100%" height="100%">
        <AreaChart data={data} margin={{ top: 8, right: 12, bottom: 0, left: 4 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e2e8f0" />
          <XAxis dataKey="date" tick={{ fontSize: 11 }} tickFormatter={(d: string) => d.slice(5)} minTickGap={16} />
          <YAxis tick={{ fontSize: 11 }} tickFormatter={(v: number) => formatCompact(v)} width={48} />
          <Tooltip formatter={(v) => formatInt(Number(v))} labelClassName="text-xs" contentStyle={{ fontSize: 12 }} />
          <Legend wrapperStyle={{ fontSize: 11 }} />
          {series.map((name) => (
            <Area key={name} type="monotone" dataKey={name} stackId="1" stroke={colorFor(name)} fill={colorFor(name)} fillOpacity={0.55} isAnimationActive={false} />
          ))}
        </AreaChart>
      </ResponsiveContainer>
    </div>
  );
}
