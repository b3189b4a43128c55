// Recorded canvas frames painted into the replay by the UI's own script, without rrweb's
// UNSAFE_replayCanvas (which gives the replay iframe allow-scripts, so a recorded page's markup could run
// script in a logged-in UI). The iframe stays sandboxed; it is same-origin, so this script can draw into its
// canvases.
//
// What is painted: the recorder's canvas frames (rrweb's canvas recording with `sampling.canvas` a number,
// "FPS mode"): an IncrementalSnapshot (type 3) of source CanvasMutation (9), context type 2D (0), whose
// commands are exactly `clearRect(0, 0, w, h)` and `drawImage(ImageBitmap(Blob([ArrayBuffer(base64)], type)),
// dx, dy[, dw, dh])`. WebGL canvases recorded in FPS mode come out the same way and are painted too. A frame
// replaces the whole canvas, so only the latest frame of a canvas matters: a seek over many frames decodes
// one, and a frame whose decode finishes after a newer one was asked for is dropped.
//
// Not painted (counted in `CanvasStats.unsupported`): rrweb's command-by-command recording (`sampling.canvas`
// 'all'): WebGL/WebGL2 calls (context types 1 and 2) and any other 2D call list.
//
// rrweb casts every event through the 'event-cast' emitter event, in play and in the synchronous
// fast-forward of a seek (Replayer.getCastFn's wrapper emits it whether or not the event was applied), so
// one listener sees the frames up to the playhead after any seek. A seek runs its casts and the flush of
// rrweb's virtual DOM in one call, so frames are resolved to nodes in a microtask, after that flush.
import type { Replayer } from '@rrweb/replay';

const FULL_SNAPSHOT = 2;
const INCREMENTAL_SNAPSHOT = 3;
const CANVAS_MUTATION = 9;

export type UnsupportedCanvas = 'webgl' | 'webgl2' | '2d';

/** One recorded canvas frame: clear a rectangle, then draw the image at (dx, dy) (scaled to dw × dh if given). */
export interface CanvasFrame {
  id: number;
  clear: [number, number, number, number];
  image: { base64: string; type: string };
  at: number[];
}

export interface CanvasStats {
  /** Frames drawn into a replayed canvas. */
  painted: number;
  /** Frames not drawn because a newer one of the same canvas was asked for (a seek, or decodes out of order). */
  superseded: number;
  /** Frames whose canvas is not in the replayed document (blocked or removed) or that failed to decode/draw. */
  failed: number;
  /** Canvas mutations of kinds the UI does not replay, by kind. */
  unsupported: Record<UnsupportedCanvas, number>;
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** The frame in a CanvasMutation event's data, or the kind of mutation it is when it is not a frame. */
export function canvasFrame(data: any): CanvasFrame | { unsupported: UnsupportedCanvas } {
  if (data?.type === 1) return { unsupported: 'webgl' };
  if (data?.type === 2) return { unsupported: 'webgl2' };
  const commands = Array.isArray(data?.commands) ? data.commands : null;
  if (data?.type !== 0 || !isNum(data.id) || !commands || commands.length !== 2) return { unsupported: '2d' };
  const [clear, draw] = commands;
  if (clear?.property !== 'clearRect' || clear.setter || !Array.isArray(clear.args) || clear.args.length !== 4
    || !clear.args.every(isNum)) return { unsupported: '2d' };
  if (draw?.property !== 'drawImage' || draw.setter || !Array.isArray(draw.args)) return { unsupported: '2d' };
  const [bitmap, ...at] = draw.args;
  const blob = bitmap?.rr_type === 'ImageBitmap' && bitmap.args?.length === 1 ? bitmap.args[0] : null;
  const buffer = blob?.rr_type === 'Blob' && blob.data?.length === 1 ? blob.data[0] : null;
  if (buffer?.rr_type !== 'ArrayBuffer' || typeof buffer.base64 !== 'string' || typeof blob.type !== 'string'
    || !(at.length === 2 || at.length === 4) || !at.every(isNum)) return { unsupported: '2d' };
  return { id: data.id, clear: clear.args, image: { base64: buffer.base64, type: blob.type }, at };
}

function decode(image: CanvasFrame['image']): Promise<ImageBitmap> {
  const text = atob(image.base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return createImageBitmap(new Blob([bytes], { type: image.type }));
}

// Canvases this module has drawn a frame into. rrweb draws a canvas's snapshot image (rr_dataURL) when an
// <img> it creates has loaded, which can be after a newer frame was drawn; that older image must not cover
// the frame. rrweb's only drawImage of an <img> into a replayed canvas is that snapshot image (the recorded
// page's script does not run), so once a frame is drawn such draws are skipped.
const framed = new WeakSet<HTMLCanvasElement>();
const guarded = new WeakSet<CanvasRenderingContext2D>();

function guard(ctx: CanvasRenderingContext2D) {
  if (guarded.has(ctx)) return;
  guarded.add(ctx);
  const drawImage = ctx.drawImage;
  (ctx as any).drawImage = function (this: CanvasRenderingContext2D, source: any, ...rest: any[]) {
    if (framed.has(this.canvas) && source?.nodeName === 'IMG') return;
    return (drawImage as any).call(this, source, ...rest);
  };
}

export interface CanvasPainter { stats: CanvasStats; stop: () => void }

/**
 * Paints the replayer's canvas frames as they are cast. `onUnsupported` is called when a mutation the UI
 * does not replay is seen (once per kind).
 */
export function paintCanvasFrames(replayer: Replayer, onUnsupported?: (kind: UnsupportedCanvas) => void): CanvasPainter {
  const stats: CanvasStats = { painted: 0, superseded: 0, failed: 0, unsupported: { webgl: 0, webgl2: 0, '2d': 0 } };
  let pending = new Map<number, CanvasFrame>();
  let scheduled = false;
  let stopped = false;
  let seq = 0;
  const asked = new WeakMap<HTMLCanvasElement, number>();

  const paint = () => {
    scheduled = false;
    if (stopped) return;
    const batch = pending;
    pending = new Map();
    for (const frame of batch.values()) {
      const node = replayer.getMirror().getNode(frame.id) as HTMLCanvasElement | null;
      // nodeName, not instanceof: the node belongs to the iframe's realm.
      if (!node || node.nodeName !== 'CANVAS') { stats.failed++; continue; }
      const mine = ++seq;
      asked.set(node, mine);
      decode(frame.image).then((bitmap) => {
        if (stopped || asked.get(node) !== mine) { stats.superseded++; bitmap.close(); return; }
        const ctx = node.getContext('2d');
        if (!ctx) { stats.failed++; bitmap.close(); return; }
        guard(ctx);
        framed.add(node);
        ctx.clearRect(...frame.clear);
        const [dx, dy, dw, dh] = frame.at;
        if (frame.at.length === 4) ctx.drawImage(bitmap, dx, dy, dw, dh); else ctx.drawImage(bitmap, dx, dy);
        bitmap.close();
        stats.painted++;
      }, () => { stats.failed++; });
    }
  };

  const onCast = (event: any) => {
    if (stopped || !event) return;
    // A rebuilt document: frames cast before it belong to the old one (ids can be reused).
    if (event.type === FULL_SNAPSHOT) { stats.superseded += pending.size; pending.clear(); return; }
    if (event.type !== INCREMENTAL_SNAPSHOT || event.data?.source !== CANVAS_MUTATION) return;
    const frame = canvasFrame(event.data);
    if ('unsupported' in frame) {
      if (stats.unsupported[frame.unsupported]++ === 0) onUnsupported?.(frame.unsupported);
      return;
    }
    if (pending.has(frame.id)) stats.superseded++;
    pending.set(frame.id, frame);
    if (!scheduled) { scheduled = true; queueMicrotask(paint); }
  };
  replayer.on('event-cast', onCast);
  return { stats, stop: () => { stopped = true; replayer.off('event-cast', onCast); } };
}
