// Drives the real recorder in headless Chromium (playwright-core, as recorder/test/*.test.js do) against
// the capture server: opens capture_page.html, clicks Pay (fetch + XHR to the backend origin, a 502, a
// console error), rage-clicks the button that does nothing, types, then flushes and stops the recorder so
// its replay chunk and its OTLP/JSON spans reach the capture server.
//
//   node capture_browser.mjs PAGE_ORIGIN BACKEND_ORIGIN RECORDER_DIR
import { createRequire } from 'node:module';
import { join } from 'node:path';

const [origin, backend, recorderDir] = process.argv.slice(2);
const { chromium } = createRequire(join(recorderDir, 'package.json'))('playwright-core');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
});
try {
  const tab = await browser.newPage({ viewport: { width: 800, height: 600 } });
  await tab.goto(`${origin}/capture/page.html?backend=${encodeURIComponent(backend)}`);
  await tab.evaluate(() => window.stReady);
  await tab.fill('#holder', 'Ada Lovelace');
  await tab.click('#pay');
  await tab.waitForSelector('#out:has-text("paid world")');
  for (let i = 0; i < 4; i++) await tab.click('#dead', { delay: 10 });
  await tab.waitForTimeout(1500); // spans end, the batch processor's delay passes
  await tab.evaluate(() => sessiontrace.flush());
  await tab.evaluate(() => sessiontrace.stop());
} finally {
  await browser.close();
}
