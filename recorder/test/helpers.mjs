// Helpers for the e2e tests: free ports, child processes, polling, small HTTP servers, and the
// decision to skip when the sessiontrace binary or Chromium is missing. Everything is on 127.0.0.1.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = process.env.SESSIONTRACE_BIN || join(ROOT, '..', 'target', 'debug', 'sessiontrace');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1', // belt and braces: nothing but loopback
];

/** Why the e2e tests cannot run here, or null. */
export function skipReason() {
  let reason = null;
  if (!existsSync(BIN)) reason = `sessiontrace server binary not found at ${BIN} (set SESSIONTRACE_BIN)`;
  else if (!existsSync(CHROMIUM)) reason = `${CHROMIUM} not found (apt-get install chromium)`;
  // CI sets SESSIONTRACE_E2E_REQUIRED so a missing prerequisite fails instead of skipping.
  if (reason && process.env.SESSIONTRACE_E2E_REQUIRED) throw new Error(`e2e required but ${reason}`);
  return reason;
}

// Ports handed out by this process: the kernel may return a just-closed port again, and two listeners of
// one test given the same port would fail to start.
const handedOut = new Set();

/** A loopback port that was free a moment ago and that this process has not handed out before. */
export async function freePort() {
  for (;;) {
    const s = createServer();
    await new Promise((r) => s.listen(0, '127.0.0.1', r));
    const { port } = s.address();
    await new Promise((r) => s.close(r));
    if (!handedOut.has(port)) { handedOut.add(port); return port; }
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it returns a truthy value (returned) or the timeout passes (throws with the last error). */
export async function waitFor(fn, { timeout = 20000, interval = 200, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(interval);
  }
  throw new Error(`timed out waiting for ${what}${last ? ': ' + last.message : ''}`);
}

export async function getJson(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url} → ${res.status} ${await res.text()}`);
  return res.json();
}

/**
 * Starts the real sessiontrace server on free ports (on `dataDir`, a new temporary one by default, removed
 * by stop()); resolves when /healthz answers.
 */
export async function startSessiontrace({ dataDir = mkdtempSync(join(tmpdir(), 'st-e2e-')) } = {}) {
  const [http, otlpHttp, otlpGrpc] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(BIN, ['serve', '--data-dir', dataDir, '--http', `127.0.0.1:${http}`,
    '--otlp-http', `127.0.0.1:${otlpHttp}`, '--otlp-grpc', `127.0.0.1:${otlpGrpc}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SESSIONTRACE_RECORDER_JS: join(ROOT, 'dist', 'recorder.js') },
  });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const api = `http://127.0.0.1:${http}`;
  try {
    await waitFor(async () => child.exitCode === null && (await fetch(api + '/healthz')).ok, { timeout: 30000, what: 'sessiontrace /healthz' });
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${e.message}\nserver output:\n${log}`);
  }
  return {
    api,
    otlpHttp: `http://127.0.0.1:${otlpHttp}`,
    log: () => log,
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Spawns a node script and resolves once it prints "listening". */
export async function startNode(script, env) {
  const child = spawn(process.execPath, [script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      log += d;
      if (log.includes('listening')) resolve();
    });
    child.stderr.on('data', (d) => (log += d));
    child.once('exit', (code) => reject(new Error(`${script} exited ${code}: ${log}`)));
  });
  return { log: () => log, stop: () => child.kill('SIGTERM') };
}

/** An in-process HTTP server; handler(req, res, body). */
export async function startHttp(handler) {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => handler(req, res, body));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}
