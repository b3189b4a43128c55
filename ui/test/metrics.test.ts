// Unit tests: chart data from metric points (rates of cumulative sums, p50/p99 of histogram intervals).
import { describe, expect, it } from 'vitest';
import { chartsFrom, quantile } from '../src/lib/metrics';

const at = (s: number) => 1_790_000_000_000 + s * 1000;

describe('metric charts', () => {
  it('reads a quantile from bucket counts, linear within the bucket', () => {
    // bounds 10, 20, 50: 4 values in (0,10], 4 in (10,20], 2 in (20,50]
    expect(quantile([4, 4, 2, 0], [10, 20, 50], 0.5)).toBeCloseTo(12.5);
    expect(quantile([4, 4, 2, 0], [10, 20, 50], 0.99)).toBeCloseTo(48.5);
    expect(quantile([0, 0, 0, 0], [10, 20, 50], 0.5)).toBeNull();
  });

  it('turns cumulative counters into a rate per second, summed across attribute sets', () => {
    const points = [0, 5, 10].flatMap((s, i) => [
      { time_ms: at(s), service: 'gateway', name: 'http.server.request.count', kind: 'sum', unit: '{request}', value: i * 10 },
      { time_ms: at(s) + 3, service: 'gateway', name: 'http.server.request.count', kind: 'sum', unit: '{request}', value: i * 5 },
    ]);
    const [chart] = chartsFrom(points);
    expect(chart.times).toEqual([at(5) / 1000, at(10) / 1000]);
    expect(chart.series[0].values).toEqual([3, 3]); // 15 more requests per 5 s
    expect(chart.unit).toBe('request/s');
  });

  it('draws a histogram in seconds as p50 and p99 in milliseconds per interval', () => {
    const h = (s: number, counts: number[]) => ({
      time_ms: at(s), service: 'orders', name: 'http.server.request.duration', kind: 'histogram', unit: 's', value: 0,
      detail: { count: counts.reduce((a, b) => a + b, 0), bucket_counts: counts.map(String), explicit_bounds: [0.01, 0.02, 0.05] },
    });
    const [chart] = chartsFrom([h(0, [1, 0, 0, 0]), h(5, [5, 4, 2, 0])]);
    expect(chart.unit).toBe('ms');
    expect(chart.series.map((s) => s.label)).toEqual(['p50', 'p99']);
    expect(chart.series[0].values[0]).toBeCloseTo(12.5);
    expect(chart.series[1].values[0]).toBeCloseTo(48.5);
  });

  it('needs two exports for an interval, and keeps gauges as they are', () => {
    const one = [{ time_ms: at(0), service: 'a', name: 'c', kind: 'sum', unit: '1', value: 3 }];
    expect(chartsFrom(one)).toEqual([]);
    const gauge = [{ time_ms: at(0), service: 'a', name: 'queue', kind: 'gauge', unit: '1', value: 7 }];
    expect(chartsFrom(gauge)[0].series[0].values).toEqual([7]);
  });
});
