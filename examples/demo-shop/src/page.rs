//! The shop's page: the sessiontrace browser recorder (`<script src="{api}/recorder.js">`) and buttons that
//! call the gateway's API with `fetch`, so a recorded visit shows the replay beside the backend traces.
//! Two buttons are there for the frustration signals: "Add to wishlist" does nothing at all (a dead
//! click) and "Stock forecast" calls `GET /api/forecast`, which fails after about 1.6 s (an error click
//! whose backend trace holds the failing span).

/// The page's HTML, loading the recorder from the sessiontrace API at `api`.
pub fn render(api: &str) -> String {
    let api = api.trim_end_matches('/').replace(['"', '<', '>'], "");
    TEMPLATE.replace("{API}", &api)
}

const TEMPLATE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>demo shop</title>
<script src="{API}/recorder.js"></script>
<style>
  body { font: 15px system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; color: #222; }
  button { margin: 0.2rem; padding: 0.4rem 0.8rem; }
  pre { background: #f4f4f4; padding: 0.8rem; min-height: 6rem; white-space: pre-wrap; }
  .muted { color: #777; }
</style>
</head>
<body>
<h1>demo shop</h1>
<p class="muted">Every call below goes gateway → orders → inventory / payment. Record a session, click around,
then open it in <a href="{API}/">sessiontrace</a>.</p>
<p>
  <button id="record">Start recording</button>
  <button id="stop" disabled>Stop recording</button>
  <span id="session" class="muted">not recording</span>
</p>
<p>
  <label>user <input id="user" value="ann"></label>
  <label>password <input id="password" type="password" value="hunter2"></label>
  <button id="login">Log in</button>
</p>
<p>
  <button id="products">Load products</button>
  <button id="checkout">Buy 2 tea</button>
  <button id="declined">Buy a pot (declined card)</button>
</p>
<p>
  <button id="recommend">Recommendations (not instrumented)</button>
</p>
<p>
  <button id="wishlist">Add to wishlist</button>
  <button id="forecast">Stock forecast (slow, fails)</button>
</p>
<pre id="out"></pre>
<script>
  const out = document.getElementById('out');
  let token = '';
  const show = (label, status, body) => { out.textContent = label + ' → ' + status + '\n' + JSON.stringify(body, null, 2); };
  async function call(label, path, options) {
    try {
      const response = await fetch(path, options);
      const body = await response.json().catch(() => null);
      show(label, response.status, body);
      return body;
    } catch (error) { show(label, 'failed', String(error)); }
  }
  const json = (body) => ({method: 'POST', headers: {'content-type': 'application/json',
    ...(token ? {authorization: 'Bearer ' + token} : {})}, body: JSON.stringify(body)});
  document.getElementById('login').onclick = async () => {
    const body = await call('login', '/api/login', json({user: document.getElementById('user').value,
      password: document.getElementById('password').value}));
    if (body && body.token) token = body.token;
  };
  document.getElementById('products').onclick = () => call('products', '/api/products');
  document.getElementById('checkout').onclick = () =>
    call('checkout', '/api/checkout', json({sku: 'tea', qty: 2, card_number: '4242-4242-4242-4242'}));
  document.getElementById('declined').onclick = () =>
    call('checkout', '/api/checkout', json({sku: 'pot', qty: 1, card_number: '4000-0000-0000-0002'}));
  document.getElementById('recommend').onclick = () => call('recommendations', '/api/recommendations');
  // #wishlist has no handler on purpose: clicking it does nothing (a dead click).
  document.getElementById('forecast').onclick = () => call('forecast', '/api/forecast');
  const record = document.getElementById('record'), stop = document.getElementById('stop');
  const label = document.getElementById('session');
  record.onclick = async () => {
    if (!window.sessiontrace) { label.textContent = 'recorder not loaded from {API}'; return; }
    const session = await sessiontrace.start({endpoint: '{API}', name: 'demo shop visit',
      capture: {headers: true, bodies: true}});
    label.innerHTML = 'recording <a href="{API}/sessions/' + session.id + '">' + session.short_id + '</a>';
    record.disabled = true; stop.disabled = false;
  };
  stop.onclick = async () => {
    await sessiontrace.stop();
    label.textContent = 'stopped'; record.disabled = false; stop.disabled = true;
  };
</script>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    #[test]
    fn page_loads_the_recorder_from_the_api() {
        let page = super::render("http://127.0.0.1:8080/");
        assert!(page.contains(r#"<script src="http://127.0.0.1:8080/recorder.js"></script>"#));
        assert!(page.contains("fetch(path"));
        assert!(!page.contains("{API}"));
    }
}
