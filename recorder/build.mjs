// Builds dist/recorder.js: one minified IIFE that exposes window.sessiontrace.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/index.js'],
  outfile: 'dist/recorder.js',
  bundle: true,
  format: 'iife',
  globalName: 'sessiontrace',
  platform: 'browser',
  target: ['es2020'],
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'info',
});
