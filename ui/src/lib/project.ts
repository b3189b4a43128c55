// Pure: which project the UI shows, and whether it goes into the URL.

export const DEFAULT_PROJECT = 'default';

/**
 * The project to show: the URL's `?project=` (a shared link wins, even for a project this user does not
 * see: the server answers what it answers), else the one kept in localStorage when the user still has it,
 * else `default` when listed, else the first listed.
 */
export function chooseProject(fromUrl: string | null, stored: string | null, projects: string[]): string {
  if (fromUrl) return fromUrl;
  if (stored && projects.includes(stored)) return stored;
  if (projects.length === 0 || projects.includes(DEFAULT_PROJECT)) return DEFAULT_PROJECT;
  return projects[0];
}

/** A lone `default` project stays out of URLs (today's URLs unchanged); any other choice is in every URL. */
export function projectInUrl(project: string, projects: string[]): boolean {
  return !(project === DEFAULT_PROJECT && projects.length <= 1);
}
