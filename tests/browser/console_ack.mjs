// Acknowledging with a category, one alarm and several at once, through the console; then the
// journal's category filter, its CSV and the handover's categories. Run by
// tests/it/console_ack.rs, which owns the gateway (open API on loopback, alarms active before
// the page opens):
//
//   1. acknowledges SINGLE_ID (a category is required), printing nothing;
//   2. acknowledges every alarm of SUBJECT with its row's "all on this subject" button;
//   3. selects the rows of PICK_IDS (comma-separated) and acknowledges the selection;
//   4. filters the journal by category `maintenance`, prints `JOURNAL <rows>`, exports the
//      unfiltered journal and prints `CSV <lines whose category is drill>`, opens the handover
//      (which starts at SHIFT_FROM, the current shift's start in the site's `[console] shifts`)
//      and prints `HANDOVER <categories>`;
//   5. saves screenshots of the page, the dialog, the journal and the handover at 1920x1080,
//      1366x768 and 390 px wide, checks nothing scrolls sideways at 390 px, prints `DONE`.
//
// Every wait is on a selector or a page condition, bounded by TIMEOUT_MS; the whole run by a
// watchdog.

import { TIMEOUT_MS, check, env, launch, watchdog } from './common.mjs';
import path from 'node:path';
import { readFile } from 'node:fs/promises';

const URL_ = env('CONSOLE_URL');
const SINGLE = env('SINGLE_ID');
const SUBJECT = env('SUBJECT');
const PICKS = env('PICK_IDS').split(',');
const USER = env('ACK_USER');
const SHIFT_FROM = env('SHIFT_FROM');
const SHOTS = env('SCREENSHOT_DIR');
const SIZES = [[1920, 1080], [1366, 768], [390, 844]];

const guard = watchdog('console ack', 180);

const browser = await launch();
const errors = [];
try {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: 'zh-CN' });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(URL_);
  await page.locator('#conn.up').waitFor();
  for (const id of [SINGLE, ...PICKS]) await page.locator(`#alarm-rows tr[data-alarm-id="${id}"]`).waitFor();
  await page.locator('#ack-selected:not([hidden])').waitFor();
  check(await page.locator('#ack-selected').isDisabled(), 'nothing selected yet: the button waits');

  const shots = async (name) => {
    for (const [w, h] of SIZES) {
      await page.setViewportSize({ width: w, height: h });
      await page.screenshot({ path: path.join(SHOTS, `console-ack-${name}-${w}.png`) });
      if (w === 390) {
        const wide = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        check(wide <= 0, `${name}: no sideways scroll at 390 px (${wide} px over)`);
      }
    }
    await page.setViewportSize({ width: 1920, height: 1080 });
  };
  const submit = async (category, comment) => {
    await page.fill('#ack-user', USER);
    await page.fill('#ack-comment', comment);
    await page.selectOption('#ack-category', category);
    await page.click('#ack-submit');
    await page.locator('#ack-dialog').waitFor({ state: 'hidden' });
  };
  await shots('alarms');

  // 1. One alarm: the console asks for a category before sending.
  await page.locator(`tr[data-alarm-id="${SINGLE}"] button[data-action="ack"]`).click();
  await page.locator('#ack-dialog[open]').waitFor();
  const choices = await page.$$eval('#ack-category option', (os) => os.map((o) => o.textContent));
  check(JSON.stringify(choices) === JSON.stringify(['（请选择）', '真实报警', '误报', '设备故障', '检修', '演练']),
    `categories offered: ${choices}`);
  await page.fill('#ack-user', USER);
  await page.click('#ack-submit');
  await page.locator('#ack-error', { hasText: '请选择报警类别' }).waitFor();
  await page.selectOption('#ack-category', 'false_alarm');
  check((await page.textContent('#ack-error')) === '', 'choosing a category clears the reminder');
  await page.fill('#ack-comment', '现场检测无泄漏，误报');
  await shots('dialog');
  await page.click('#ack-submit');
  await page.locator('#ack-dialog').waitFor({ state: 'hidden' });
  await page.locator(`#alarm-rows tr.acked[data-alarm-id="${SINGLE}"]`).waitFor();

  // 2. Every alarm of one point, from its row.
  const subjectRows = page.locator(`#alarm-rows tr[data-alarm-id^="${SUBJECT}:"]`);
  const many = await subjectRows.count();
  check(many >= 2, `${SUBJECT} has several alarms (${many})`);
  await subjectRows.first().locator('button[data-action="ack-subject"]').click();
  await page.locator('#ack-dialog[open]').waitFor();
  await page.locator('#ack-what', { hasText: `共 ${many} 条报警` }).waitFor();
  await shots('dialog-subject');
  await submit('maintenance', '仪表检修标定');
  await page.waitForFunction(([s, n]) => document.querySelectorAll(`#alarm-rows tr.acked[data-alarm-id^="${s}:"]`).length === n,
    [SUBJECT, many]);

  // 3. A selection of rows.
  for (const id of PICKS) await page.check(`tr[data-alarm-id="${id}"] input.pick`);
  await page.locator('#ack-selected', { hasText: `确认所选（${PICKS.length}）` }).waitFor();
  await page.click('#ack-selected');
  await page.locator('#ack-dialog[open]').waitFor();
  await page.locator('#ack-what', { hasText: `共 ${PICKS.length} 条报警` }).waitFor();
  await submit('drill', '应急演练');
  for (const id of PICKS) await page.locator(`#alarm-rows tr.acked[data-alarm-id="${id}"]`).waitFor();
  await page.locator('#ack-selected[hidden]').waitFor({ state: 'attached' });
  await shots('acked');

  // 4. The journal by category, its CSV, the handover.
  await page.click('#journal-btn');
  await page.locator('#journal-dialog[open]').waitFor();
  await page.selectOption('#j-category', 'maintenance');
  await page.click('#journal-form button[type=submit]');
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('#j-rows tr')];
    return rows.length > 0 && rows.every((tr) => tr.dataset.category === 'maintenance' && tr.textContent.includes('检修'));
  });
  console.log(`JOURNAL ${await page.locator('#j-rows tr').count()}`);
  await shots('journal');
  await page.selectOption('#j-category', '');
  await page.click('#journal-form button[type=submit]');
  await page.waitForFunction(() => [...document.querySelectorAll('#j-rows tr')].some((tr) => !tr.dataset.category));
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#j-csv')]);
  const text = await readFile(await download.path(), 'utf8');
  const [head, ...lines] = text.slice(1).trim().split('\r\n');
  const cols = head.split(',');
  const at = cols.indexOf('category');
  check(at > 0 && cols[at + 1] === 'category_name', `CSV names the category: ${head}`);
  const drills = lines.filter((l) => l.split(',')[at] === 'drill');
  for (const l of drills) check(l.split(',')[at + 1] === '演练', `the category's name follows its code: ${l}`);
  console.log(`CSV ${drills.length}`);
  await page.click('#j-handover');
  await page.locator('#j-summary:not([hidden]) [data-h="categories"]').waitFor();
  check((await page.inputValue('#j-from')) === SHIFT_FROM, `the handover starts at the shift's start ${SHIFT_FROM}: ${await page.inputValue('#j-from')}`);
  console.log(`HANDOVER ${await page.evaluate(() => document.getElementById('j-summary').dataset.categories)}`);
  await shots('handover');
  check(errors.length === 0, `no script errors: ${errors.join('; ')}`);
  console.log('DONE');
} catch (e) {
  console.error(`console ack failed: ${e.stack || e}; page errors: ${errors.join('; ')}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  clearTimeout(guard);
}
