// Which action buttons each role sees in the console, and the admin's actions through it.
// Run by tests/it/console_roles.rs, which owns the gateway (alarms active before the pages
// open, one of them latched):
//
//   1. for each `role=token` in ROLES (comma-separated), opens the console as a kiosk would
//      (token in the tab's session storage), waits for every alarm in ALARMS, checks the
//      header names the role, and prints `BUTTONS <role> <json: alarm id -> actions>`;
//   2. as the last role (an admin): resets LATCHED_ID (a reason is required), takes OOS_ID out
//      of service and returns it, each through the dialog;
//   3. filters the alarm journal by ACTOR, prints `JOURNAL <rows shown>`, exports it as CSV and
//      prints `CSV <data lines>` (each checked to name ACTOR), then `DONE`.
//
// Every wait is on a selector or a page condition, bounded by TIMEOUT_MS; the whole run by a
// watchdog.

import { TIMEOUT_MS, check, env, launch, watchdog } from './common.mjs';
import path from 'node:path';
import { readFile } from 'node:fs/promises';

const URL_ = env('CONSOLE_URL');
const ROLES = env('ROLES').split(',').map((p) => p.split('='));
const ALARMS = env('ALARMS').split(',');
const LATCHED = env('LATCHED_ID');
const OOS = env('OOS_ID');
const ACTOR = env('ACTOR');
const SHOTS = env('SCREENSHOT_DIR');
const ROLE_TEXT = { viewer: '只读', operator: '操作员', admin: '管理员' };

const guard = watchdog('console roles', 180);

const browser = await launch();
const errors = [];
try {
  let page = null;
  for (const [role, token] of ROLES) {
    const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: 'zh-CN' });
    await context.addInitScript((tok) => sessionStorage.setItem('hg.token', tok), token);
    page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT_MS);
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(URL_);
    await page.locator('#conn.up').waitFor();
    for (const id of ALARMS) await page.locator(`tr[data-alarm-id="${id}"]`).waitFor();
    await page.locator('#who .role', { hasText: ROLE_TEXT[role] }).waitFor();
    // A cleared latched alarm's recorded value is its value at return, and says so.
    await page.locator(`tr[data-alarm-id="${LATCHED}"] .trip.cleared`, { hasText: '恢复时' }).waitFor();
    await page.locator(`tr[data-alarm-id="${LATCHED}"] .tag.latch`).waitFor();
    const buttons = await page.evaluate(() => Object.fromEntries(
      [...document.querySelectorAll('tr[data-alarm-id]')].map((tr) => [
        tr.dataset.alarmId,
        [...tr.querySelectorAll('button[data-action]')].map((b) => b.dataset.action),
      ])));
    const picks = await page.locator('input.pick').count();
    const ackSelected = await page.locator('#ack-selected').isVisible();
    check(role === 'viewer' ? picks === 0 && !ackSelected : picks > 0 && ackSelected,
      `${role}: rows to pick and "acknowledge selected" only for roles that may acknowledge (${picks}, ${ackSelected})`);
    await page.screenshot({ path: path.join(SHOTS, `console-roles-${role}.png`) });
    console.log(`BUTTONS ${role} ${JSON.stringify(buttons)}`);
  }

  // The last role acts: reset with a reason, out of service and back.
  const act = async (id, action, reason) => {
    await page.locator(`tr[data-alarm-id="${id}"] button[data-action="${action}"]`).click();
    await page.locator('#ack-dialog[open]').waitFor();
    if (reason !== null) {
      await page.click('#ack-submit');
      await page.locator('#ack-error', { hasText: '原因' }).waitFor();
      await page.fill('#ack-comment', reason);
    }
    await page.click('#ack-submit');
    await page.locator('#ack-dialog').waitFor({ state: 'hidden' });
  };
  await act(LATCHED, 'reset', '现场确认已无泄漏，复位');
  await page.locator(`tr[data-alarm-id="${LATCHED}"]`).waitFor({ state: 'detached' });
  await act(OOS, 'oos', '探头更换 (detector replacement)');
  await page.locator(`#held-rows tr[data-alarm-id="${OOS}"] button[data-action="rts"]`).waitFor();
  await page.screenshot({ path: path.join(SHOTS, 'console-roles-out-of-service.png') });
  await act(OOS, 'rts', null);
  await page.locator(`#alarm-rows tr[data-alarm-id="${OOS}"]`).waitFor();

  // The journal, filtered by who acted, and its CSV export.
  await page.click('#journal-btn');
  await page.locator('#journal-dialog[open]').waitFor();
  await page.fill('#j-user', ACTOR);
  await page.click('#journal-form button[type=submit]');
  await page.locator('#j-count', { hasText: '共' }).waitFor();
  await page.waitForFunction((who) => [...document.querySelectorAll('#j-rows tr')]
    .every((tr) => tr.textContent.includes(who)), ACTOR);
  const shown = await page.locator('#j-rows tr').count();
  await page.screenshot({ path: path.join(SHOTS, 'console-roles-journal.png') });
  console.log(`JOURNAL ${shown}`);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#j-csv')]);
  const text = await readFile(await download.path(), 'utf8');
  check(text.startsWith('\ufefftime,seq,alarm_id,'), `CSV header: ${text.slice(0, 60)}`);
  const data = text.slice(1).trim().split('\r\n').slice(1);
  for (const line of data) check(line.includes(ACTOR), `every exported line names ${ACTOR}: ${line}`);
  console.log(`CSV ${data.length}`);

  // The shift handover: the last 8 hours summarised, and its print view.
  await page.click('#j-handover');
  await page.locator('#j-summary:not([hidden]) [data-h="raised"]').waitFor();
  const h = await page.evaluate(() => ({ ...document.getElementById('j-summary').dataset }));
  console.log(`HANDOVER ${h.raised} ${h.acknowledged} ${h.open}`);
  await page.screenshot({ path: path.join(SHOTS, 'console-roles-handover.png') });
  await page.emulateMedia({ media: 'print' });
  await page.screenshot({ path: path.join(SHOTS, 'console-roles-handover-print.png'), fullPage: true });
  await page.emulateMedia({ media: 'screen' });
  check(errors.length === 0, `no script errors: ${errors.join('; ')}`);
  console.log('DONE');
} catch (e) {
  console.error(`console roles failed: ${e.stack || e}; page errors: ${errors.join('; ')}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  clearTimeout(guard);
}
