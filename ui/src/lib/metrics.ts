// Chart data from stored metric points (`/api/metrics`): one chart per service and metric, over time.
// OpenTelemetry SDKs export cumulative sums and histograms by default, one point per attribute set per
// export; points of one export are added up across attribute sets, then consecutive exports give the
// interval: a counter's rate per second, a histogram's p50 and p99 from its bucket counts (linear within
// a bucket). Gauges are drawn as they are (summed across attribute sets).

export interface MetricPoint {
  time_ms: number; service: string; name: string; kind: string; unit: string; value: number | null;
  detail?: { count?: number; bucket_counts?: (number | string)[]; explicit_bounds?: number[] } | null;
}

export interface Chart {
  key: string; service: string; name: string; unit: string; kind: string;
  /** Unix seconds (uPlot's x). */
  times: number[];
  series: { label: string; values: (number | null)[] }[];
}

interface Export { time: number; value: number; buckets: number[]; bounds: number[] }

/** The value at quantile `q` (0..1) of a histogram interval, linear within a bucket; null when empty. */
export function quantile(buckets: number[], bounds: number[], q: number): number | null {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    if (buckets[i] > 0 && seen + buckets[i] >= rank) {
      const lower = i === 0 ? 0 : bounds[i - 1];
      const upper = i < bounds.length ? bounds[i] : bounds[bounds.length - 1] ?? lower;
      return lower + (upper - lower) * ((rank - seen) / buckets[i]);
    }
    seen += buckets[i];
  }
  return bounds[bounds.length - 1] ?? null;
}

/** Seconds become milliseconds on the chart (latencies read better in ms). */
const scaleOf = (unit: string) => (unit === 's' ? { factor: 1000, unit: 'ms' } : { factor: 1, unit });

export function chartsFrom(points: MetricPoint[]): Chart[] {
  const groups = new Map<string, MetricPoint[]>();
  for (const p of points) {
    const key = `${p.service}\u0000${p.name}`;
    (groups.get(key) ?? groups.set(key, []).get(key)!).push(p);
  }
  const charts: Chart[] = [];
  for (const [key, list] of groups) {
    const { service, name, kind, unit } = list[0];
    // One export per timestamp (rounded to 100 ms), summed across attribute sets.
    const byTime = new Map<number, Export>();
    for (const p of list) {
      const t = Math.round(p.time_ms / 100) * 100;
      const e = byTime.get(t) ?? { time: t, value: 0, buckets: [], bounds: p.detail?.explicit_bounds ?? [] };
      e.value += p.value ?? 0;
      (p.detail?.bucket_counts ?? []).forEach((c, i) => { e.buckets[i] = (e.buckets[i] ?? 0) + Number(c); });
      byTime.set(t, e);
    }
    const exports = [...byTime.values()].sort((a, b) => a.time - b.time);
    const scale = scaleOf(unit);
    if (kind === 'sum' || kind === 'histogram') {
      if (exports.length < 2) continue; // an interval needs two exports
      const times: number[] = [], rate: (number | null)[] = [], p50: (number | null)[] = [], p99: (number | null)[] = [];
      for (let i = 1; i < exports.length; i++) {
        const [a, b] = [exports[i - 1], exports[i]];
        const seconds = (b.time - a.time) / 1000;
        times.push(b.time / 1000);
        if (kind === 'sum') {
          rate.push(seconds > 0 ? Math.max(0, b.value - a.value) / seconds : null);
        } else {
          const delta = b.buckets.map((c, j) => Math.max(0, c - (a.buckets[j] ?? 0)));
          const q = (x: number) => { const v = quantile(delta, b.bounds, x); return v === null ? null : v * scale.factor; };
          p50.push(q(0.5));
          p99.push(q(0.99));
        }
      }
      charts.push(kind === 'sum'
        ? { key, service, name, kind, unit: `${unit.replace(/[{}]/g, '') || 'count'}/s`, times, series: [{ label: 'rate /s', values: rate }] }
        : { key, service, name, kind, unit: scale.unit, times, series: [{ label: 'p50', values: p50 }, { label: 'p99', values: p99 }] });
    } else {
      charts.push({ key, service, name, kind, unit: scale.unit, times: exports.map((e) => e.time / 1000),
        series: [{ label: 'value', values: exports.map((e) => e.value * scale.factor) }] });
    }
  }
  return charts.sort((a, b) => a.service.localeCompare(b.service) || a.name.localeCompare(b.name));
}
