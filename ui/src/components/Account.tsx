// Top bar, right side: the project switcher and, when logged in, the user's name and a logout button.
import { useState } from 'preact/hooks';
import { logout, switchProject, type AuthState } from '../auth';

export function Account({ auth }: { auth: AuthState }) {
  const [busy, setBusy] = useState(false);
  const me = auth.me;
  if (!me) return null;
  // A project named in a shared link but not listed for this user is still shown (the server decides).
  const projects = me.projects.includes(auth.project) ? me.projects : [...me.projects, auth.project];
  return (
    <div class="account">
      <label class="inline small">Project
        <select aria-label="Project" data-testid="project-select" value={auth.project}
          onChange={(e) => switchProject((e.currentTarget as HTMLSelectElement).value)}>
          {projects.map((p) => <option value={p}>{p}</option>)}
        </select>
      </label>
      {me.user ? (
        <>
          <span class="user small" title={`role: ${me.user.role}`} data-testid="user-name">{me.user.name}</span>
          <button class="btn small" type="button" disabled={busy} data-testid="logout"
            onClick={() => { setBusy(true); logout().catch(() => {}).finally(() => setBusy(false)); }}>Log out</button>
        </>
      ) : null}
    </div>
  );
}
