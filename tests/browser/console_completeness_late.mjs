// The completeness page's spans the regulator got late (补传). Run by tests/it/uplink_late.rs,
// which owns the gateway, after an uplink's platform was down and its backlog went out: opens
// /completeness for DAY and checks its late-delivery rows are LATE (JSON: the cells the page
// should show, from the API's `regulator_spans`); then in English. Prints `DONE`.

import { TIMEOUT_MS, check, env, launch, watchdog } from './common.mjs';
import path from 'node:path';

const URL_ = env('CONSOLE_URL');
const DAY = env('DAY');
const LATE = JSON.parse(env('LATE'));
const SHOTS = env('SCREENSHOT_DIR');

const guard = watchdog('console completeness late', 60);
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, locale: 'zh-CN' });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(new URL(`/completeness#day=${DAY}`, URL_).href);
  await page.waitForFunction(() => window.hgCompleteness && (window.hgCompleteness.error || window.hgCompleteness.late));
  let c = await page.evaluate(() => window.hgCompleteness);
  check(!c.error, `the page loaded: ${c.error}`);
  check(c.day === DAY, `day ${c.day}`);
  check(same(c.late, LATE), `late spans\n page ${JSON.stringify(c.late)}\n API  ${JSON.stringify(LATE)}`);
  check(await page.locator('#late-none').isHidden(), 'no "none" beside the spans');
  await page.locator('#late-rows').scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(SHOTS, 'console-completeness-late.png') });
  await page.locator('#lang').press('Enter');
  await page.waitForFunction(() => document.documentElement.lang === 'en');
  c = await page.evaluate(() => window.hgCompleteness);
  check(c.late.every((r) => r[3].startsWith('backfilled (done ')), `English backfill: ${JSON.stringify(c.late)}`);
  check(errors.length === 0, `no script errors: ${errors.join('; ')}`);
  console.log('DONE');
} catch (e) {
  console.error(`console completeness late failed: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  clearTimeout(guard);
}
