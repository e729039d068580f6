// The console of a gateway that is read-only (it listens beyond loopback without tokens and
// without `[api] open = true`). Run by tests/it/console_read_only.rs, which owns the gateway and
// has raised ALARM_ID before the page opens: the header says why nothing can be done, no row
// offers an action or a tick box, and the same holds in English. Screenshots at 1920x1080,
// 1366x768 and 390 px; prints `DONE`.

import { TIMEOUT_MS, check, env, launch, watchdog } from './common.mjs';
import path from 'node:path';

const URL_ = env('CONSOLE_URL');
const ALARM = env('ALARM_ID');
const SHOTS = env('SCREENSHOT_DIR');

const guard = watchdog('console read-only', 120);

const browser = await launch();
const errors = [];
try {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: 'zh-CN' });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(URL_);
  await page.locator('#conn.up').waitFor();
  const row = page.locator(`#alarm-rows tr[data-alarm-id="${ALARM}"]`);
  await row.waitFor();
  await page.locator('#who.open', { hasText: '只读：网关对外监听且未配置令牌' }).waitFor();
  check(await page.locator('button[data-action]').count() === 0, 'no action buttons on a read-only gateway');
  check(await page.locator('input.pick').count() === 0, 'no rows to pick');
  check(await page.locator('#ack-selected').isHidden(), 'no "acknowledge selected"');
  check(await page.locator('#login-btn').isHidden(), 'nothing to log in to');
  for (const [w, h] of [[1920, 1080], [1366, 768], [390, 844]]) {
    await page.setViewportSize({ width: w, height: h });
    await page.screenshot({ path: path.join(SHOTS, `console-read-only-${w}.png`) });
  }
  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.click('#lang');
  await page.locator('#who', { hasText: 'Read-only: the gateway listens beyond loopback without tokens' }).waitFor();
  await page.screenshot({ path: path.join(SHOTS, 'console-read-only-en.png') });
  check(errors.length === 0, `no script errors: ${errors.join('; ')}`);
  console.log('DONE');
} catch (e) {
  console.error(`console read-only failed: ${e.stack || e}; page errors: ${errors.join('; ')}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  clearTimeout(guard);
}
