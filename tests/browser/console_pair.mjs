// The console of a hot-standby pair. Run by tests/it/pair.rs, which owns the two gateways:
// opened at the standby's address it lands on the active's console, whose header names the
// node and its role; after the test stops the standby (a line on stdin), the header says no
// switch-over is possible, in Chinese and in English. Screenshots; prints `READY`, `DONE`.

import { TIMEOUT_MS, check, closeInput, env, launch, nextLine, watchdog } from './common.mjs';
import path from 'node:path';

const STANDBY = env('STANDBY_URL');
const ACTIVE = env('ACTIVE_URL');
const SHOTS = env('SCREENSHOT_DIR');

const guard = watchdog('console pair', 120);

const browser = await launch();
const errors = [];
try {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: 'zh-CN' });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(STANDBY);
  check(new URL(page.url()).origin === new URL(ACTIVE).origin, `the standby sent the console to the active (at ${page.url()})`);
  await page.locator('#conn.up').waitFor();
  await page.locator('#pair', { hasText: '双机热备：A机主用' }).waitFor();
  check(!(await page.locator('#pair').evaluate((e) => e.classList.contains('degraded'))), 'a healthy pair is not marked');
  console.log('READY');
  await nextLine();
  await page.locator('#pair.degraded', { hasText: '备机未同步，无法切换' }).waitFor();
  await page.screenshot({ path: path.join(SHOTS, 'console-pair-degraded.png') });
  await page.click('#lang');
  await page.locator('#pair.degraded', { hasText: 'Standby pair: node A active (standby not following' }).waitFor();
  check(errors.length === 0, `no script errors: ${errors.join('; ')}`);
  console.log('DONE');
} catch (e) {
  console.error(`console pair failed: ${e.stack || e}; page errors: ${errors.join('; ')}`);
  process.exitCode = 1;
} finally {
  closeInput();
  await browser.close();
  clearTimeout(guard);
}
