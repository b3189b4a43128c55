// Who is signed in and which project is shown: one small store the app shell subscribes to.
// /me decides: auth off (no login, projects still switchable), on with a user, or the login page. Any
// 401 from the API brings the login page back; after login the page that was open renders again.
import { useSyncExternalStore } from 'preact/compat';
import { api, ApiError, clientState, setUnauthorizedHandler, type Me } from './api';
import { chooseProject, projectInUrl } from './lib/project';
import { navigate, setStickyParam } from './router';

const STORED_PROJECT = 'sessiontrace:project';

export type AuthStatus = 'loading' | 'login' | 'ready' | 'error';
export interface AuthState {
  status: AuthStatus;
  me: Me | null;
  project: string;
  /** Why the login page is shown again (expired login), or why /me failed. */
  message: string | null;
}

let state: AuthState = { status: 'loading', me: null, project: 'default', message: null };
const listeners = new Set<() => void>();

function set(next: Partial<AuthState>) {
  state = { ...state, ...next };
  clientState.csrfToken = state.me?.csrf_token ?? null;
  listeners.forEach((l) => l());
}

function subscribe(listener: () => void) {
  listeners.add(listener);
  return () => { listeners.delete(listener); };
}

/** The current state; re-renders on every change, including one made between the render and the
 * subscription (a fast /me answering before the effects ran used to leave the app at "Loading…"). */
export function useAuth(): AuthState {
  return useSyncExternalStore(subscribe, () => state);
}

function storedProject(): string | null {
  try { return localStorage.getItem(STORED_PROJECT); } catch { return null; }
}

/** Shows `project`: every request carries it, the URL names it (shareable), localStorage keeps it. */
function applyProject(project: string, projects: string[]) {
  clientState.project = project;
  try { localStorage.setItem(STORED_PROJECT, project); } catch { /* private mode: the URL still has it */ }
  const inUrl = projectInUrl(project, projects);
  setStickyParam('project', inUrl ? project : null);
  const u = new URL(location.href);
  if (inUrl) u.searchParams.set('project', project); else u.searchParams.delete('project');
  navigate(u.pathname + u.search, true);
}

function signedIn(me: Me) {
  const fromUrl = new URL(location.href).searchParams.get('project');
  const project = chooseProject(fromUrl, storedProject(), me.projects);
  applyProject(project, me.projects);
  set({ status: 'ready', me, message: null, project });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Unreachable, overloaded or failing for a moment: worth asking again before showing an error. */
const transient = (e: unknown) => !(e instanceof ApiError) || e.status >= 500 || e.status === 429 || e.status === 408;

/** Asks the server who we are (at start, and from the error page), retrying transient failures. */
export async function loadMe() {
  set({ status: 'loading', message: null });
  for (let attempt = 0; ; attempt++) {
    try {
      const me = await api.me();
      if (me.auth === 'on' && !me.user) set({ status: 'login', me: null });
      else signedIn(me);
      return;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) { set({ status: 'login', me: null }); return; }
      if (!transient(e) || attempt >= 4) { set({ status: 'error', message: String((e as Error)?.message ?? e) }); return; }
      await sleep(500 * 2 ** attempt);
    }
  }
}

/** Logs in; rejects with the server's message (wrong password, too many attempts). */
export async function login(name: string, password: string) {
  signedIn(await api.login(name, password));
}

export async function logout() {
  try {
    await api.logout();
  } finally {
    // Whatever the server said, this tab forgets the login; the next call would answer 401 anyway.
    set({ status: 'login', me: null, message: null });
  }
}

/** The project switcher: every page reloads its data for the new project. */
export function switchProject(project: string) {
  if (project === state.project) return;
  applyProject(project, state.me?.projects ?? []);
  set({ project });
}

setUnauthorizedHandler(() => {
  if (state.status === 'login') return;
  set({
    status: 'login', me: null,
    message: state.me?.user ? 'Your login has expired: log in again.' : null,
  });
});
