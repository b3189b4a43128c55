// Unit tests: the service map's layout (dagre) and edge labels.
import { describe, expect, it } from 'vitest';
import { edgeLabel, layoutMap } from '../src/lib/servicemap';

const map = {
  nodes: ['browser', 'gateway', 'orders', 'payment', 'inventory'].map((service) => ({ service, spans: 2, errors: 0 })),
  edges: [
    { from: 'browser', to: 'gateway', calls: 3, errors: 0, p50_ms: 40, trace_ids: ['a'] },
    { from: 'gateway', to: 'orders', calls: 3, errors: 1, p50_ms: 30.25, trace_ids: ['a'] },
    { from: 'orders', to: 'payment', calls: 2, errors: 1, p50_ms: 1500, trace_ids: ['a'] },
    { from: 'orders', to: 'inventory', calls: 1, errors: 0, p50_ms: 5, trace_ids: ['a'] },
  ],
};

describe('service map', () => {
  it('places callers left of the services they call, without overlaps', () => {
    const layout = layoutMap(map);
    const at = Object.fromEntries(layout.nodes.map((n) => [n.service, n]));
    for (const e of map.edges) expect(at[e.from].x).toBeLessThan(at[e.to].x);
    for (const a of layout.nodes) for (const b of layout.nodes) {
      if (a === b) continue;
      const apart = Math.abs(a.x - b.x) >= (a.width + b.width) / 2 || Math.abs(a.y - b.y) >= (a.height + b.height) / 2;
      expect(apart, `${a.service} and ${b.service} overlap`).toBe(true);
    }
    expect(layout.edges.every((e) => e.points.length >= 2)).toBe(true);
    expect(layout.width).toBeGreaterThan(0);
  });
  it('labels an edge with its calls, errors and p50', () => {
    expect(edgeLabel(map.edges[0])).toBe('3 calls · p50 40.0ms');
    expect(edgeLabel(map.edges[2])).toBe('2 calls · 1 err · p50 1.50s');
    expect(edgeLabel(map.edges[3])).toBe('1 call · p50 5.0ms');
  });
});
