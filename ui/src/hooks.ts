// Shared hooks: interval polling and async loading with abort.
import { useEffect, useRef, useState } from 'preact/hooks';

export function useInterval(fn: () => void, ms: number | null) {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    if (ms === null) return;
    const id = setInterval(() => ref.current(), ms);
    return () => clearInterval(id);
  }, [ms]);
}

export interface Loaded<T> { data: T | null; error: string | null; loading: boolean; reload: () => void }

/** Load with `fn` whenever `deps` change; `reload()` refetches in place (no flash of empty state). */
export function useLoad<T>(fn: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: string | null; loading: boolean }>({ data: null, error: null, loading: true });
  const [nonce, setNonce] = useState(0);
  const depsKey = JSON.stringify(deps);
  const lastKey = useRef(depsKey);
  useEffect(() => {
    const ctl = new AbortController();
    const fresh = lastKey.current !== depsKey;
    lastKey.current = depsKey;
    setState((s) => (fresh ? { data: null, error: null, loading: true } : { ...s, loading: true }));
    fn(ctl.signal).then(
      (data) => { if (!ctl.signal.aborted) setState({ data, error: null, loading: false }); },
      (e) => { if (!ctl.signal.aborted) setState((s) => ({ data: fresh ? null : s.data, error: String(e?.message ?? e), loading: false })); },
    );
    return () => ctl.abort();
  }, [depsKey, nonce]);
  return { ...state, reload: () => setNonce((n) => n + 1) };
}
