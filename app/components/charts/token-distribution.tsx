import { Bar, BarChart, CartesianGrid, ReferenceArea, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { formatCompact, formatInt } from "~/domain/format";
import { binBounds, binOf } from "~/domain/token-histogram";

export interface DistributionPoint {
  bin: number;
  low: number;
  high: number;
  calls: number;
}

/**
 * Calls per log-scaled token bin, with the type's expected range shaded. The x axis is the
 * bin number so that the band can be drawn between bins; ticks show tokens.
 */
export function TokenDistribution({ points, expected, height = 260, label }: { points: DistributionPoint[]; expected: { min: number; max: number } | null; height?: number; label: string }) {
  const bins = points.map((p) => p.bin);
  const band = expected ? { x1: binOf(expected.min) - 0.5, x2: binOf(expected.max) + 0.5 } : null;
  const lo = Math.min(...bins, band ? Math.floor(band.x1) : Infinity) - 1;
  const hi = Math.max(...bins, band ? Math.ceil(band.x2) : -Infinity) + 1;
  return (
    <div role="img" aria-label={label} style={{ height }}>
      <ResponsiveContainer width="100%" height="100%">
        <BarChart data={points} margin={{ top: 8, right: 12, bottom: 0, left: 4 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e2e8f0" />
          <XAxis dataKey="bin" type="number" domain={[lo, hi]} allowDecimals={false} tick={{ fontSize: 11 }}
            tickFormatter={(b: number) => formatCompact(Math.ceil(binBounds(b).low))} />
          <YAxis tick={{ fontSize: 11 }} tickFormatter={(v: number) => formatCompact(v)} width={48} />
          {band ? <ReferenceArea x1={band.x1} x2={band.x2} fill="#16a34a" fillOpacity={0.12} stroke="#16a34a" strokeOpacity={0.4} label={{ value: "expected", position: "insideTop", fontSize: 11, fill: "#15803d" }} /> : null}
          <Tooltip labelFormatter={(b) => { const { low, high } = binBounds(Number(b)); return `${formatInt(Math.ceil(low))}–${formatInt(Math.ceil(high) - 1)} tokens`; }}
            formatter={(v) => [formatInt(Number(v)), "calls"]} contentStyle={{ fontSize: 12 }} />
          <Bar dataKey="calls" fill="#4f46e5" isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}
