// Builds the recorder two ways:
// - dist/index.js + dist/index.d.ts: the ES module of the npm package `@sessiontrace/recorder`
//   (`import { start } from '@sessiontrace/recorder'`). Its dependencies stay imports, listed in
//   package.json's `dependencies`, so the app's bundler deduplicates them (one OpenTelemetry API, one rrweb).
// - dist/recorder.js: one minified IIFE with everything inside that exposes window.sessiontrace; the server
//   embeds it and serves it at /recorder.js. The rrweb inside it carries our patches
//   (scripts/rrweb-patches.mjs: the sliced full snapshot, cheaper per-node serialization); the ES module
//   leaves rrweb to the app's bundler, unpatched (the recorder then takes rrweb's one-task snapshot).
// A file whose content did not change is not rewritten: the server's build script watches dist/recorder.js,
// and a new mtime alone would rebuild the server.
import { build } from 'esbuild';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { rrwebPatchPlugin } from './scripts/rrweb-patches.mjs';

const common = {
  entryPoints: ['src/index.js'],
  bundle: true,
  platform: 'browser',
  target: ['es2020'],
  legalComments: 'none',
  logLevel: 'info',
  write: false,
};

function writeIfChanged(path, contents) {
  if (existsSync(path) && Buffer.compare(readFileSync(path), Buffer.from(contents)) === 0) return;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, contents);
}

const builds = await Promise.all([
  build({ ...common, outfile: 'dist/recorder.js', format: 'iife', globalName: 'sessiontrace', minify: true, plugins: [rrwebPatchPlugin] }),
  build({ ...common, outfile: 'dist/index.js', format: 'esm', packages: 'external' }),
]);
for (const { outputFiles } of builds) {
  for (const file of outputFiles) writeIfChanged(file.path, file.contents);
}
writeIfChanged('dist/index.d.ts', readFileSync('src/index.d.ts'));
