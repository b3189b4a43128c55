import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from './fixtures.mjs';
const base = process.env.BASE || 'http://127.0.0.1:8099';
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
const page = await browser.newPage({ viewport: { width: Number(process.env.W||1440), height: Number(process.env.H||900) } });
page.on('console', (m) => console.log('console:', m.type(), m.text().slice(0, 300)));
page.on('pageerror', (e) => console.log('pageerror:', e.message));
for (const [name, url, act] of JSON.parse(process.argv[2])) {
  const t0 = Date.now();
  await page.goto(base + url);
  await page.waitForTimeout(1200);
  if (act) await eval(act);
  console.log(name, 'ms', Date.now() - t0);
  await page.screenshot({ path: `/tmp/stscratch/${name}.png`, fullPage: !!process.env.FULL });
}
await browser.close();
