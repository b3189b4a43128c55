// Recorded canvases shown in the replay by the UI's own script, without rrweb's UNSAFE_replayCanvas (which
// gives the replay iframe allow-scripts, so a recorded page's markup could run script in a logged-in UI).
//
// In the sandboxed iframe (no allow-scripts) a <canvas> is rendered as its fallback content: whatever is
// drawn into its bitmap is never shown (rrweb draws the snapshot image there, unseen). So a canvas is shown
// as an image instead: `content: url(...)` on the element (inline, !important), which makes it a replaced
// element of the image's size (the canvas's bitmap size; the page's CSS width/height still apply). The
// image is the snapshot's (rr_dataURL, set when rrweb builds the node) and then each recorded frame's.
//
// What is painted: the recorder's canvas frames (rrweb's canvas recording with `sampling.canvas` a number,
// "FPS mode"): an IncrementalSnapshot (type 3) of source CanvasMutation (9), context type 2D (0), whose
// commands are exactly `clearRect(0, 0, w, h)` and `drawImage(ImageBitmap(Blob([ArrayBuffer(base64)], type)),
// 0, 0[, w, h])`: the frame's image is the whole canvas. WebGL canvases
// recorded in FPS mode come out the same way and are painted too. Only the latest frame of a canvas matters:
// a seek over many frames decodes one, and a frame whose decode finishes after a newer one was asked for is
// dropped.
//
// Not painted (counted in `CanvasStats.unsupported`): rrweb's command-by-command recording (`sampling.canvas`
// 'all'): WebGL/WebGL2 calls (context types 1 and 2) and any other 2D call list (other calls, a part of the
// canvas cleared or drawn).
//
// This is an rrweb replay plugin. rrweb calls a plugin's handler for every event it casts, in play and in
// the synchronous fast-forward of a seek (Replayer.getCastFn's wrapper, whether or not the event was
// applied), so the handler sees the frames up to the playhead after any seek; and onBuild for every node it
// builds (full snapshot, mutation, virtual-DOM flush). A seek runs its casts and the flush of rrweb's virtual
// DOM in one call, so frames are resolved to nodes in a microtask, after that flush.
import type { playerConfig } from '@rrweb/replay';

type ReplayPlugin = NonNullable<playerConfig['plugins']>[number];

const FULL_SNAPSHOT = 2;
const INCREMENTAL_SNAPSHOT = 3;
const CANVAS_MUTATION = 9;

export type UnsupportedCanvas = 'webgl' | 'webgl2' | '2d';

/** One recorded canvas frame: the image of the whole canvas (its bitmap's width × height). */
export interface CanvasFrame {
  id: number;
  width: number;
  height: number;
  image: { base64: string; type: string };
}

export interface CanvasStats {
  /** Frames shown in a replayed canvas. */
  painted: number;
  /** Frames not drawn because a newer one of the same canvas was asked for (a seek, or decodes out of order). */
  superseded: number;
  /** Frames whose canvas is not in the replayed document (blocked or removed) or that failed to decode. */
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
  const [x, y, width, height] = Array.isArray(clear?.args) ? clear.args : [];
  if (clear?.property !== 'clearRect' || clear.setter || clear.args.length !== 4 || x !== 0 || y !== 0
    || !isNum(width) || !isNum(height)) return { unsupported: '2d' };
  if (draw?.property !== 'drawImage' || draw.setter || !Array.isArray(draw.args)) return { unsupported: '2d' };
  const [bitmap, ...at] = draw.args;
  const blob = bitmap?.rr_type === 'ImageBitmap' && bitmap.args?.length === 1 ? bitmap.args[0] : null;
  const buffer = blob?.rr_type === 'Blob' && blob.data?.length === 1 ? blob.data[0] : null;
  const whole = (at.length === 2 || (at.length === 4 && at[2] === width && at[3] === height)) && at[0] === 0 && at[1] === 0;
  if (buffer?.rr_type !== 'ArrayBuffer' || typeof buffer.base64 !== 'string' || typeof blob.type !== 'string' || !whole) {
    return { unsupported: '2d' };
  }
  return { id: data.id, width, height, image: { base64: buffer.base64, type: blob.type } };
}

function blobOf(image: CanvasFrame['image']): Blob {
  const text = atob(image.base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return new Blob([bytes], { type: image.type });
}

const isCanvas = (node: any): node is HTMLCanvasElement => node?.nodeName === 'CANVAS'; // the iframe's realm

function show(canvas: HTMLCanvasElement, url: string) {
  canvas.style.setProperty('content', `url("${url.replace(/["\\\n]/g, (c) => encodeURIComponent(c))}")`, 'important');
}

export interface CanvasReplay { plugin: ReplayPlugin; stats: CanvasStats; stop: () => void }

/**
 * A replay plugin showing recorded canvases. `onUnsupported` is called the first time a mutation of a kind
 * the UI does not replay is seen.
 */
export function canvasReplay(onUnsupported?: (kind: UnsupportedCanvas) => void): CanvasReplay {
  const stats: CanvasStats = { painted: 0, superseded: 0, failed: 0, unsupported: { webgl: 0, webgl2: 0, '2d': 0 } };
  let pending = new Map<number, CanvasFrame>();
  let scheduled = false;
  let stopped = false;
  let seq = 0;
  const asked = new WeakMap<HTMLCanvasElement, number>();
  const shown = new WeakMap<HTMLCanvasElement, string>(); // the frame's object URL a canvas shows
  const urls = new Set<string>();
  const drop = (url: string | undefined) => { if (url && urls.delete(url)) URL.revokeObjectURL(url); };

  const paint = (replayer: ReplayContext) => {
    scheduled = false;
    if (stopped) return;
    const batch = pending;
    pending = new Map();
    for (const frame of batch.values()) {
      const node = replayer.getMirror().getNode(frame.id);
      if (!isCanvas(node)) { stats.failed++; continue; }
      const mine = ++seq;
      asked.set(node, mine);
      const url = URL.createObjectURL(blobOf(frame.image));
      urls.add(url);
      // Decoded before it is shown: no blank canvas while it loads, and a bad image is never shown.
      const img = new Image();
      img.src = url;
      img.decode().then(() => {
        if (stopped || asked.get(node) !== mine) { stats.superseded++; drop(url); return; }
        drop(shown.get(node));
        shown.set(node, url);
        show(node, url);
        stats.painted++;
      }, () => { stats.failed++; drop(url); });
    }
  };

  const plugin: ReplayPlugin = {
    onBuild(node, { replayer }) {
      if (stopped || !isCanvas(node)) return;
      const snapshot = (replayer.getMirror().getMeta(node) as any)?.attributes?.rr_dataURL;
      if (typeof snapshot === 'string' && snapshot.startsWith('data:image/')) show(node, snapshot);
    },
    handler(event: any, _isSync, { replayer }) {
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
      if (!scheduled) { scheduled = true; queueMicrotask(() => paint(replayer)); }
    },
  };
  return { plugin, stats, stop: () => { stopped = true; for (const url of [...urls]) drop(url); } };
}

type ReplayContext = Parameters<NonNullable<ReplayPlugin['handler']>>[2]['replayer'];
