// The metrics of a session's services over its window (±1 minute), as small uPlot line charts: request
// rates from counters, p50/p99 from histograms. A vertical line follows the replay's playhead.
import { useEffect, useMemo, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { api } from '../api';
import { useLoad } from '../hooks';
import { chartsFrom, type Chart } from '../lib/metrics';

const COLORS = ['#3b5bdb', '#e8590c', '#2b8a3e', '#862e9c'];

function MetricChart({ chart, playhead }: { chart: Chart; playhead: number | null }) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const head = useRef<number | null>(playhead);
  head.current = playhead;
  useEffect(() => {
    if (!host.current) return;
    const cursorLine = {
      hooks: {
        draw: (u: uPlot) => {
          const t = head.current;
          if (t === null) return;
          const x = u.valToPos(t / 1000, 'x', true);
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
          u.ctx.save();
          u.ctx.strokeStyle = '#e03131';
          u.ctx.lineWidth = 1.5 * devicePixelRatio;
          u.ctx.beginPath();
          u.ctx.moveTo(x, u.bbox.top);
          u.ctx.lineTo(x, u.bbox.top + u.bbox.height);
          u.ctx.stroke();
          u.ctx.restore();
        },
      },
    };
    const opts: uPlot.Options = {
      width: Math.max(220, host.current.clientWidth), height: 120, plugins: [cursorLine],
      legend: { show: true, live: false },
      axes: [{ size: 24, font: '10px sans-serif' }, { size: 44, font: '10px sans-serif', label: chart.unit, labelSize: 12, labelFont: '10px sans-serif' }],
      series: [{}, ...chart.series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true }))],
    };
    const u = new uPlot(opts, [chart.times, ...chart.series.map((s) => s.values)] as uPlot.AlignedData, host.current);
    plot.current = u;
    const ro = new ResizeObserver(() => host.current && u.setSize({ width: Math.max(220, host.current.clientWidth), height: 120 }));
    ro.observe(host.current);
    return () => { ro.disconnect(); u.destroy(); plot.current = null; };
  }, [chart]);
  useEffect(() => { plot.current?.redraw(false); }, [playhead]);
  return (
    <figure class="metric-chart" data-metric={chart.name} data-service={chart.service}>
      <figcaption><span class="svc-tag">{chart.service}</span> <span class="mono small">{chart.name}</span></figcaption>
      <div ref={host} />
    </figure>
  );
}

export function MetricsPanel({ id, from, to, playhead, version }: { id: string; from: number; to: number; playhead: number | null; version?: string }) {
  const res = useLoad((sig) => api.sessionMetrics(id, from - 60_000, to + 60_000, sig), [id, Math.round(from), Math.round(to), version]);
  const charts = useMemo(() => chartsFrom(res.data?.points ?? []), [res.data]);
  return (
    <section class="panel metrics" data-testid="metrics" aria-label="Metrics">
      <h2>Metrics <span class="muted small">services of this session, ±1 min</span></h2>
      {res.error ? <p class="err-text small">Could not load metrics: {res.error}</p> : null}
      {!res.loading && !charts.length && !res.error ? <p class="muted small">No metrics from these services in this window (an SDK's meter provider exports them, e.g. every 60 s by default).</p> : null}
      <div class="metric-grid">{charts.map((c) => <MetricChart key={c.key} chart={c} playhead={playhead} />)}</div>
    </section>
  );
}
