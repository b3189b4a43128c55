// The npm package: `npm pack` makes a tarball with exactly the ES module, its types, the script bundle and
// the package files; its exports map and types resolve for a bundler (esbuild) and for TypeScript; the ES
// module leaves its dependencies to the app's bundler (each one listed in `dependencies`, none inlined,
// none also a dev dependency).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Packs the recorder into a temporary folder and unpacks it as node_modules/@sessiontrace/recorder. */
function packAndInstall() {
  const dir = mkdtempSync(join(tmpdir(), 'st-pack-'));
  const [info] = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', dir], {
    cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
  }));
  const installed = join(dir, 'node_modules', '@sessiontrace', 'recorder');
  mkdirSync(installed, { recursive: true });
  execFileSync('tar', ['xzf', join(dir, info.filename), '-C', installed, '--strip-components=1']);
  return { dir, info, installed };
}

const packed = packAndInstall();
process.on('exit', () => rmSync(packed.dir, { recursive: true, force: true }));

test('the tarball holds the module, its types, the script bundle and nothing else', () => {
  const files = packed.info.files.map((f) => f.path).sort();
  assert.deepEqual(files, ['README.md', 'dist/index.d.ts', 'dist/index.js', 'dist/recorder.js', 'package.json']);
  assert.equal(packed.info.name, '@sessiontrace/recorder');
  assert.ok(packed.info.size < 150_000, `tarball is ${packed.info.size} bytes`);
  console.log(`npm pack: ${packed.info.filename} ${packed.info.size} bytes packed, ${packed.info.unpackedSize} unpacked`);
});

test('the exports map and types name files in the tarball', () => {
  const pkg = JSON.parse(readFileSync(join(packed.installed, 'package.json'), 'utf8'));
  assert.equal(pkg.type, 'module');
  assert.deepEqual(pkg.exports['.'], { types: './dist/index.d.ts', import: './dist/index.js', default: './dist/index.js' });
  assert.equal(pkg.exports['./recorder.js'], './dist/recorder.js');
  assert.equal(pkg.types, './dist/index.d.ts');
  for (const file of [pkg.exports['.'].types, pkg.exports['.'].import, pkg.exports['./recorder.js'], pkg.types, pkg.main]) {
    assert.ok(existsSync(join(packed.installed, file)), `${file} is not in the tarball`);
  }
  const types = readFileSync(join(packed.installed, 'dist/index.d.ts'), 'utf8');
  const module = readFileSync(join(packed.installed, 'dist/index.js'), 'utf8');
  for (const name of ['start', 'stop', 'flush', 'sessionId', 'session', 'stats']) {
    assert.match(types, new RegExp(`export function ${name}\\(`), `types declare ${name}`);
    assert.match(module, new RegExp(`\\b${name}\\b`), `module exports ${name}`);
  }
});

test('the module imports its dependencies instead of bundling them, and declares each once', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const module = readFileSync(join(packed.installed, 'dist/index.js'), 'utf8');
  const imported = new Set([...module.matchAll(/^import .* from "([^".][^"]*)";$/gm)].map((m) => m[1]));
  const dependencies = Object.keys(pkg.dependencies).sort();
  assert.deepEqual([...imported].sort(), dependencies, 'every import is a dependency and every dependency is imported');
  for (const name of dependencies) {
    assert.ok(!(name in pkg.devDependencies), `${name} is both a dependency and a dev dependency`);
  }
  // Nothing of rrweb or the OpenTelemetry SDK inlined: the module is the recorder's own code only.
  assert.ok(module.length < 80_000, `dist/index.js is ${module.length} bytes: a dependency was inlined`);
  assert.doesNotMatch(module, /node_modules/);
  // The script bundle, by contrast, carries everything (it is served alone at /recorder.js).
  assert.ok(readFileSync(join(packed.installed, 'dist/recorder.js'), 'utf8').length > 100_000);
});

test('a bundler resolves `import { start } from "@sessiontrace/recorder"` through the exports map', async () => {
  const result = await build({
    stdin: {
      contents: "import { start, stop } from '@sessiontrace/recorder';\nwindow.recorder = { start, stop };\n",
      resolveDir: packed.dir,
      loader: 'js',
    },
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    metafile: true,
    // The package's own dependencies, as an app's npm install would have put them.
    nodePaths: [join(ROOT, 'node_modules')],
    logLevel: 'silent',
  });
  const inputs = Object.keys(result.metafile.inputs);
  assert.ok(inputs.some((p) => p.endsWith('node_modules/@sessiontrace/recorder/dist/index.js')), inputs.join('\n'));
  assert.ok(inputs.some((p) => p.includes('@rrweb/record')), 'rrweb comes from the app\'s node_modules');
});

test('TypeScript checks a consumer against the packed types', () => {
  const consumer = join(packed.dir, 'consumer.ts');
  writeFileSync(consumer, [
    "import { start, stop, type Session, type StartOptions } from '@sessiontrace/recorder';",
    "const options: StartOptions = { endpoint: 'http://127.0.0.1:8080', propagateTo: [/^https:\\/\\/api\\./], capture: { headers: true } };",
    'const started: Promise<Session> = start(options);',
    'started.then((session) => console.log(session.short_id.toUpperCase()));',
    'const stopped: Promise<Session | null> = stop();',
    "// @ts-expect-error kind is 'manual' or 'continuous'",
    "start({ kind: 'sometimes' });",
    'void stopped;',
    '',
  ].join('\n'));
  writeFileSync(join(packed.dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, module: 'esnext', moduleResolution: 'bundler', target: 'es2020', lib: ['es2020', 'dom'], types: [] },
    files: ['consumer.ts'],
  }));
  execFileSync(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', packed.dir], { stdio: 'inherit' });
});
