// Vite config for the sessiontrace UI: Preact JSX via the bundler's TS transform, output to ui/dist.
// `npm run dev` proxies the API to a local server (SESSIONTRACE_URL, default http://127.0.0.1:8080).
import { defineConfig } from 'vite';

const api = process.env.SESSIONTRACE_URL || 'http://127.0.0.1:8080';

export default defineConfig({
  base: '/',
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1024 },
  server: { proxy: { '/api': api, '/healthz': api, '/v1': api } },
  test: { include: ['test/**/*.test.ts'], environment: 'node' },
} as any);
