// Tiny history router: real paths (/sessions/{id}, /traces/{trace_id}) that the server falls back to index.html for.
import { useSyncExternalStore } from 'preact/compat';

export { parseRoute, type Route } from './lib/route';

const listeners = new Set<() => void>();
window.addEventListener('popstate', () => listeners.forEach((l) => l()));

// Query parameters every URL keeps (the project: links stay shareable, a reload keeps it).
const sticky = new Map<string, string>();
export function setStickyParam(name: string, value: string | null) {
  if (value === null) sticky.delete(name); else sticky.set(name, value);
}

function withSticky(url: string): string {
  if (sticky.size === 0) return url;
  const u = new URL(url, location.origin);
  for (const [k, v] of sticky) if (!u.searchParams.has(k)) u.searchParams.set(k, v);
  return u.pathname + u.search + u.hash;
}

export function navigate(url: string, replace = false) {
  url = withSticky(url);
  if (url === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', url); else history.pushState(null, '', url);
  listeners.forEach((l) => l());
}

/** Update query parameters of the current URL (replaceState; the page keeps its state). */
export function setQuery(params: Record<string, string | number | null | undefined>, push = false) {
  const u = new URL(location.href);
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === '') u.searchParams.delete(k); else u.searchParams.set(k, String(v));
  }
  navigate(u.pathname + u.search, !push);
}

function subscribe(listener: () => void) {
  listeners.add(listener);
  return () => { listeners.delete(listener); };
}

/** The current path and query; re-renders on every navigation, even one made before the first effects ran. */
export function useLocation(): { pathname: string; search: URLSearchParams } {
  const href = useSyncExternalStore(subscribe, () => location.pathname + location.search);
  const u = new URL(href, location.origin);
  return { pathname: u.pathname, search: u.searchParams };
}

/** Intercept same-origin <a href> clicks so navigation stays client-side (modifier clicks open new tabs). */
export function installLinkInterceptor() {
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = (e.target as Element | null)?.closest?.('a');
    if (!a || a.target || a.hasAttribute('download')) return;
    const href = a.getAttribute('href');
    if (!href || !href.startsWith('/') || href.startsWith('//') || href.startsWith('/api/')) return;
    e.preventDefault();
    navigate(href);
  });
}
