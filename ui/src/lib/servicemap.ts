// Layout of a session's service map with dagre (a library made for laying out directed graphs): services
// left to right in call order, edges routed between them. Pure, so it is unit-tested.
import dagre from '@dagrejs/dagre';
import type { MapEdge, ServiceMap } from '../api';

export interface PlacedNode { service: string; x: number; y: number; width: number; height: number; spans: number; errors: number }
export interface PlacedEdge { edge: MapEdge; points: { x: number; y: number }[]; label: { x: number; y: number } }
export interface Layout { nodes: PlacedNode[]; edges: PlacedEdge[]; width: number; height: number }

export const NODE_W = 130;
export const NODE_H = 44;

/** The label of an edge: calls, errors and median duration. */
export function edgeLabel(e: MapEdge): string {
  const p50 = e.p50_ms >= 1000 ? `${(e.p50_ms / 1000).toFixed(2)}s` : `${e.p50_ms.toFixed(1)}ms`;
  return `${e.calls} call${e.calls === 1 ? '' : 's'}${e.errors ? ` · ${e.errors} err` : ''} · p50 ${p50}`;
}

export function layoutMap(map: ServiceMap): Layout {
  const g = new dagre.graphlib.Graph({ multigraph: false });
  g.setGraph({ rankdir: 'LR', nodesep: 30, ranksep: 110, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of map.nodes) g.setNode(n.service, { width: NODE_W, height: NODE_H });
  for (const e of map.edges) g.setEdge(e.from, e.to, { width: 150, height: 16, labelpos: 'c' });
  dagre.layout(g);
  const nodes = map.nodes.map((n) => {
    const p = g.node(n.service);
    return { service: n.service, x: p.x, y: p.y, width: p.width, height: p.height, spans: n.spans, errors: n.errors };
  });
  const edges = map.edges.map((edge) => {
    const p = g.edge(edge.from, edge.to) as { points: { x: number; y: number }[]; x: number; y: number };
    return { edge, points: p.points, label: { x: p.x, y: p.y } };
  });
  const graph = g.graph() as { width?: number; height?: number };
  return { nodes, edges, width: graph.width ?? 0, height: graph.height ?? 0 };
}
