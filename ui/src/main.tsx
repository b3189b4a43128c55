// Entry point: app shell (header with navigation and trace-id box) and client-side routes.
import { render } from 'preact';
import './style.css';
import { installLinkInterceptor, parseRoute, useLocation } from './router';
import { SessionsList } from './pages/SessionsList';
import { SessionPage } from './pages/SessionPage';
import { TraceIdForm, TracePage } from './pages/TracePage';

function App() {
  const loc = useLocation();
  const route = parseRoute(loc.pathname);
  let page;
  switch (route.page) {
    case 'sessions': page = <SessionsList search={loc.search} />; break;
    case 'session': page = <SessionPage key={route.id} id={route.id} search={loc.search} />; break;
    case 'trace': page = <TracePage traceId={route.traceId} search={loc.search} />; break;
    default: page = <main class="page"><p class="pad">Page not found. <a href="/">Sessions</a></p></main>;
  }
  return (
    <>
      <header class="topbar">
        <a href="/" class="brand" aria-label="sessiontrace home">session<b>trace</b></a>
        <nav><a href="/" class={route.page === 'sessions' ? 'active' : ''}>Sessions</a><a href="/traces" class={route.page === 'trace' ? 'active' : ''}>Traces</a></nav>
        {route.page !== 'trace' ? <TraceIdForm compact /> : null}
      </header>
      {page}
    </>
  );
}

installLinkInterceptor();
render(<App />, document.getElementById('app')!);
