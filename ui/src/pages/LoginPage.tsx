// Login page: shown when the server has auth on and this browser has no (or an expired) login. The URL
// does not change, so after login the page that was asked for renders.
import { useState } from 'preact/hooks';
import { ApiError } from '../api';
import { login } from '../auth';

export function loginErrorText(e: unknown): string {
  if (e instanceof ApiError && e.status === 429) {
    return `Too many failed logins: try again ${e.retryAfter ? `in ${e.retryAfter} s` : 'later'}.`;
  }
  if (e instanceof ApiError && e.status === 401) return e.message || 'wrong name or password';
  return `Could not log in: ${(e as Error)?.message ?? e}`;
}

export function LoginPage({ notice }: { notice?: string | null }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      await login(name.trim(), password);
      // The app renders the page that was asked for; this component is gone.
    } catch (err) {
      setError(loginErrorText(err));
      setPassword('');
      setBusy(false);
    }
  };

  return (
    <main class="page login-page">
      <form class="login" onSubmit={submit} aria-label="Log in" data-testid="login-form">
        <h1>Log in to session<b>trace</b></h1>
        {notice ? <p class="muted small" role="status">{notice}</p> : null}
        <label>Name
          <input name="name" autocomplete="username" required value={name} disabled={busy}
            onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>Password
          <input name="password" type="password" autocomplete="current-password" required value={password} disabled={busy}
            onInput={(e) => setPassword((e.currentTarget as HTMLInputElement).value)} />
        </label>
        {error ? <p class="err-text small" role="alert" data-testid="login-error">{error}</p> : null}
        <button class="btn primary" type="submit" disabled={busy || !name.trim() || !password}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
    </main>
  );
}
