// Drives the duty-officer console in Debian's headless Chromium (playwright-core, no browser
// download). Run by tests/it/console.rs, which owns the gateway and the simulator:
//
//   1. opens the console (logging in with TOKEN if given), checks the Chinese default and the
//      English switch (kept across a reload), enables sound, then prints `READY`;
//   2. the Rust test raises the alarm; this script waits for ALARM_ID's row, checks it stands
//      out as unacknowledged and that the new alarm sounded (and, with EXPECT_FLOOD, that the
//      flood banner shows), saves a screenshot;
//   3. acknowledges it through the page as a real alarm with COMMENT (typing ACK_USER when the
//      API is open),
//      waits for the row to show it acknowledged, saves screenshots, prints `DONE`.
//
// Every wait is on a selector or a page condition, bounded by TIMEOUT_MS; the whole run is
// bounded by a watchdog.

import { TIMEOUT_MS, check, env, launch, closeInput, nextLine, watchdog } from './common.mjs';
import path from 'node:path';

const URL_ = env('CONSOLE_URL');
const ALARM_ID = env('ALARM_ID');
const COMMENT = env('COMMENT');
const TOKEN = process.env.TOKEN || '';
const ACK_USER = process.env.ACK_USER || '';
const SHOTS = env('SCREENSHOT_DIR');
const PREFIX = env('SCREENSHOT_PREFIX', 'console');
const EXPECT_FLOOD = process.env.EXPECT_FLOOD === '1';

const guard = watchdog('console flow', 150);

const browser = await launch('user-gesture-required');
try {
  // A fresh context is a fresh profile: no stored language, token or name.
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: 'zh-CN' });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));

  await page.goto(URL_);
  if (TOKEN) {
    // The API wants a token: the console asks for one before showing anything.
    await page.locator('#login-dialog[open]').waitFor();
    await page.fill('#login-token', 'not-a-token');
    await page.click('#login-dialog button[type=submit]');
    await page.locator('#login-error', { hasText: '令牌无效' }).waitFor();
    await page.fill('#login-token', TOKEN);
    await page.click('#login-dialog button[type=submit]');
    await page.locator('#login-dialog').waitFor({ state: 'hidden' });
  }
  await page.locator('#conn.up').waitFor();
  await page.locator('#point-rows tr').first().waitFor();

  // Simplified Chinese by default; the English switch survives a reload.
  check((await page.textContent('#alarms-h')).includes('活动报警'), 'Chinese by default');
  check((await page.getAttribute('html', 'lang')) === 'zh-CN', 'html lang zh-CN');
  await page.click('#lang');
  await page.locator('#alarms-h', { hasText: 'Active alarms' }).waitFor();
  await page.reload();
  await page.locator('#conn.up').waitFor();
  await page.locator('#alarms-h', { hasText: 'Active alarms' }).waitFor();
  await page.click('#lang');
  await page.locator('#alarms-h', { hasText: '活动报警' }).waitFor();

  // Sound needs a user gesture first.
  await page.click('#sound');
  await page.locator('#sound.on').waitFor();
  console.log('READY');
  await nextLine();

  const row = page.locator(`#alarm-rows tr[data-alarm-id="${ALARM_ID}"]`);
  await row.waitFor();
  check(await row.evaluate((tr) => tr.classList.contains('unack')), 'a new alarm is shown unacknowledged');
  check((await row.locator('.state').textContent()).includes('未确认'), 'state says unacknowledged');
  await page.waitForFunction(() => Number(document.body.dataset.beeps || 0) >= 1);
  await page.locator('#silence:not([hidden])').waitFor();
  if (EXPECT_FLOOD) await page.locator('#flood:not([hidden])', { hasText: '报警泛滥' }).waitFor();
  await page.screenshot({ path: path.join(SHOTS, `${PREFIX}-screenshot.png`) });

  await row.locator('button.ack').click();
  await page.locator('#ack-dialog[open]').waitFor();
  const userField = page.locator('#ack-user-row');
  if (TOKEN) {
    check(await userField.isHidden(), 'with a token the name comes from the token');
  } else {
    // Open API: a name is required before the acknowledgement is sent.
    await page.fill('#ack-comment', COMMENT);
    await page.click('#ack-submit');
    await page.locator('#ack-error', { hasText: '值班员姓名' }).waitFor();
    await page.fill('#ack-user', ACK_USER);
  }
  await page.fill('#ack-comment', COMMENT);
  await page.selectOption('#ack-category', 'real_alarm');
  await page.screenshot({ path: path.join(SHOTS, `${PREFIX}-ack-dialog.png`) });
  await page.click('#ack-submit');
  await page.locator('#ack-dialog').waitFor({ state: 'hidden' });
  await page.locator(`#alarm-rows tr.acked[data-alarm-id="${ALARM_ID}"]`).waitFor();
  check((await row.locator('button.ack').count()) === 0, 'no acknowledge button once acknowledged');
  // The horn stops once no urgent alarm waits (in a flood others still do).
  if (!EXPECT_FLOOD) await page.locator('#silence[hidden]').waitFor({ state: 'attached' });
  await page.screenshot({ path: path.join(SHOTS, `${PREFIX}-acked.png`) });
  await page.click('#lang');
  await page.locator(`#alarm-rows tr[data-alarm-id="${ALARM_ID}"] .state`, { hasText: 'Active, acked' }).waitFor();
  await page.screenshot({ path: path.join(SHOTS, `${PREFIX}-en.png`) });
  check(pageErrors.length === 0, `no script errors: ${pageErrors.join('; ')}`);
  console.log('DONE');
} catch (e) {
  console.error(`console flow failed: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  closeInput();
  clearTimeout(guard);
}
