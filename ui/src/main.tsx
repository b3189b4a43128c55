// Entry point: app shell (header with navigation, trace-id box, project and account) and client-side routes.
// Nothing renders before /me answered; with auth on and no login, the login page stands in for any route.
import { render } from 'preact';
import './style.css';
import { installLinkInterceptor, parseRoute, useLocation } from './router';
import { loadMe, useAuth } from './auth';
import { Account } from './components/Account';
import { LoginPage } from './pages/LoginPage';
import { SessionsList } from './pages/SessionsList';
import { SessionPage } from './pages/SessionPage';
import { TraceIdForm, TracePage } from './pages/TracePage';

function App() {
  const loc = useLocation();
  const auth = useAuth();
  const route = parseRoute(loc.pathname);
  let page;
  if (auth.status === 'loading') page = <main class="page"><p class="muted pad">Loading…</p></main>;
  else if (auth.status === 'error') {
    page = <main class="page"><p class="err-text pad">Could not reach the server: {auth.message} <button class="btn" onClick={() => loadMe()}>Retry</button></p></main>;
  } else if (auth.status === 'login') page = <LoginPage notice={auth.message} />;
  else {
    // Keyed by project: switching projects remounts the page, which loads its data again.
    switch (route.page) {
      case 'sessions': page = <SessionsList key={auth.project} search={loc.search} />; break;
      case 'session': page = <SessionPage key={`${auth.project}/${route.id}`} id={route.id} search={loc.search} />; break;
      case 'trace': page = <TracePage key={auth.project} traceId={route.traceId} search={loc.search} />; break;
      default: page = <main class="page"><p class="pad">Page not found. <a href="/">Sessions</a></p></main>;
    }
  }
  const ready = auth.status === 'ready';
  return (
    <>
      <header class="topbar">
        <a href="/" class="brand" aria-label="sessiontrace home">session<b>trace</b></a>
        {ready ? <nav><a href="/" class={route.page === 'sessions' ? 'active' : ''}>Sessions</a><a href="/traces" class={route.page === 'trace' ? 'active' : ''}>Traces</a></nav> : null}
        <span class="spacer" />
        {ready && route.page !== 'trace' ? <TraceIdForm compact /> : null}
        {ready ? <Account auth={auth} /> : null}
      </header>
      {page}
    </>
  );
}

installLinkInterceptor();
render(<App />, document.getElementById('app')!);
loadMe();
