// rrweb replay (@rrweb/replay) with our own controls: play/pause, speed, seek slider; reports the playhead
// (absolute ms) to the parent and accepts seeks through `control`. New events of a live session are appended.
// Recorded canvases are shown by lib/canvas.ts: rrweb's own canvas replay needs UNSAFE_replayCanvas.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { Replayer } from '@rrweb/replay';
import '@rrweb/replay/dist/style.css';
import { fmtOffset } from '../lib/format';
import { canvasReplay, type UnsupportedCanvas } from '../lib/canvas';

export interface ReplayControl { seek: (absMs: number, play?: boolean) => void; toggle: () => void }

interface Props {
  events: any[];
  onTime: (absMs: number) => void;
  control: { current: ReplayControl | null };
}

const SPEEDS = [0.5, 1, 2, 4, 8];

export function canReplay(events: any[]): boolean {
  return events.length >= 2 && events.some((e) => e && e.type === 2);
}

export function Replay({ events, onTime, control }: Props) {
  const stage = useRef<HTMLDivElement>(null);
  const host = useRef<HTMLDivElement>(null);
  const rep = useRef<Replayer | null>(null);
  const added = useRef(0);
  const size = useRef({ w: 1024, h: 768 });
  const [playing, setPlaying] = useState(false);
  const [speed, setSpeed] = useState(1);
  const [cur, setCur] = useState(0);
  const [total, setTotal] = useState(0);
  const [skip, setSkip] = useState(true);
  const [unpainted, setUnpainted] = useState<UnsupportedCanvas[]>([]);
  const onTimeRef = useRef(onTime);
  onTimeRef.current = onTime;

  const fit = () => {
    const r = rep.current, el = stage.current;
    if (!r || !el) return;
    const { w, h } = size.current;
    const scale = Math.min(el.clientWidth / w, el.clientHeight / h, 1) || 1;
    r.wrapper.style.transform = `scale(${scale})`;
    r.wrapper.style.transformOrigin = 'top left';
    r.wrapper.style.left = `${Math.max(0, (el.clientWidth - w * scale) / 2)}px`;
    r.wrapper.style.top = '0px';
  };

  // Create the replayer once per session (events identity of the first load); later growth is appended.
  useLayoutEffect(() => {
    if (!host.current || !canReplay(events)) return;
    const sorted = [...events].sort((a, b) => a.timestamp - b.timestamp);
    setUnpainted([]);
    const canvases = canvasReplay((kind) => setUnpainted((kinds) => [...kinds, kind]));
    const r = new Replayer(sorted, {
      root: host.current, skipInactive: skip, showWarning: false, mouseTail: false,
      triggerFocus: false, speed, UNSAFE_replayCanvas: false, plugins: [canvases.plugin],
    });
    rep.current = r;
    added.current = events.length;
    r.on('resize', (d: any) => { if (d && d.width && d.height) size.current = { w: d.width, h: d.height }; fit(); });
    r.on('finish', () => setPlaying(false));
    const meta = r.getMetaData();
    const first = sorted.find((e) => e.type === 4 && e.data && e.data.width);
    if (first) size.current = { w: first.data.width, h: first.data.height };
    setTotal(meta.totalTime);
    r.pause(0);
    fit();
    onTimeRef.current(meta.startTime);
    const ro = new ResizeObserver(fit);
    if (stage.current) ro.observe(stage.current);
    return () => { ro.disconnect(); canvases.stop(); r.destroy(); rep.current = null; host.current && (host.current.innerHTML = ''); };
  }, [canReplay(events)]);

  // Live sessions: append events that arrived since the last poll.
  useEffect(() => {
    const r = rep.current;
    if (!r || events.length <= added.current) return;
    for (let i = added.current; i < events.length; i++) r.addEvent(events[i]);
    added.current = events.length;
    setTotal(r.getMetaData().totalTime);
  }, [events.length]);

  // Playhead ticker.
  useEffect(() => {
    if (!playing) return;
    let raf = 0, last = 0;
    const tick = (now: number) => {
      const r = rep.current;
      if (r && now - last > 80) {
        last = now;
        const t = Math.min(r.getCurrentTime(), r.getMetaData().totalTime);
        setCur(t);
        onTimeRef.current(r.getMetaData().startTime + t);
      }
      raf = requestAnimationFrame(tick);
    };
    raf = requestAnimationFrame(tick);
    return () => cancelAnimationFrame(raf);
  }, [playing]);

  const seekOffset = (off: number, play = playing) => {
    const r = rep.current;
    if (!r) return;
    const t = Math.max(0, Math.min(off, r.getMetaData().totalTime));
    if (play) r.play(t); else r.pause(t);
    setPlaying(play);
    setCur(t);
    onTimeRef.current(r.getMetaData().startTime + t);
  };
  const toggle = () => {
    const r = rep.current;
    if (!r) return;
    if (playing) { r.pause(); setPlaying(false); setCur(r.getCurrentTime()); return; }
    const meta = r.getMetaData();
    const at = cur >= meta.totalTime - 1 ? 0 : cur;
    r.play(at);
    setPlaying(true);
  };
  control.current = {
    seek: (absMs, play) => { const r = rep.current; if (r) seekOffset(absMs - r.getMetaData().startTime, play ?? playing); },
    toggle,
  };

  if (!canReplay(events)) {
    return (
      <div class="replay empty" data-testid="replay-empty">
        <p>{events.length ? 'No DOM snapshot in this session’s replay events yet.' : 'No replay: this is a backend-only session (no browser events).'}</p>
        <p class="muted">The timeline and trace waterfalls still work.</p>
      </div>
    );
  }

  return (
    <div class="replay" data-testid="replay">
      <div class="replay-stage" ref={stage}><div ref={host} class="replay-host" /></div>
      <div class="replay-controls" role="group" aria-label="Replay controls">
        <button type="button" class="btn primary" onClick={toggle} aria-label={playing ? 'Pause' : 'Play'} data-testid="play">
          {playing ? '❚❚ Pause' : '▶ Play'}
        </button>
        <input
          type="range" class="seek" min={0} max={Math.max(1, Math.round(total))} step={10} value={Math.round(cur)}
          aria-label="Seek" onInput={(e) => seekOffset(Number((e.currentTarget as HTMLInputElement).value))}
        />
        <span class="clock mono">{fmtOffset(cur)} / {fmtOffset(total)}</span>
        <label class="inline">Speed{' '}
          <select value={speed} aria-label="Speed" onChange={(e) => {
            const s = Number((e.currentTarget as HTMLSelectElement).value);
            setSpeed(s); rep.current?.setConfig({ speed: s });
          }}>
            {SPEEDS.map((s) => <option value={s}>{s}×</option>)}
          </select>
        </label>
        <label class="inline" title="Skip periods without user activity">
          <input type="checkbox" checked={skip} onChange={(e) => {
            const v = (e.currentTarget as HTMLInputElement).checked; setSkip(v); rep.current?.setConfig({ skipInactive: v });
          }} /> skip idle
        </label>
        {unpainted.length > 0 && (
          <span class="muted" data-testid="canvas-unpainted"
            title="Recorded with rrweb's call-by-call canvas recording, which the replay does not paint; the recorder's recordCanvas frames are painted">
            canvas not replayed: {unpainted.map((k) => (k === '2d' ? '2D calls' : k === 'webgl' ? 'WebGL' : 'WebGL2')).join(', ')}
          </span>
        )}
      </div>
    </div>
  );
}
