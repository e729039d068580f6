// The console's safety behaviour in Debian's headless Chromium (playwright-core). Run by
// tests/it/console_safety.rs, which owns the gateway (with alarms already active when the page
// opens) and stops and restarts it on cue:
//
//   A. a kiosk (autoplay allowed, token set before load, no click at all): the horn sounds at
//      load with the critical tone; the gateway's own fault (a store without its secret) shows; the rows show live, trip and set-point values; a faulty
//      sensor reads as its fault and a state point as its state; the operator sees no shelve
//      button on a critical alarm; silence is separate from acknowledge; shelving needs a
//      reason and keeps the alarm visible in its own counted section while the hazard-source
//      card keeps its alarm and counts it shelved; once the sounding alarms are acknowledged
//      the horn stops, and unshelving an unacknowledged alarm starts it again. Prints `READY`.
//   B. the Rust test stops the gateway: a full-width banner, the connection tone, values greyed
//      with their age. Prints `LOST`.
//   C. the Rust test restarts it: the banner goes, the still-unacknowledged alarm sounds again.
//   D. a browser that blocks audio until a gesture: a banner says so and the page says
//      `blocked`; one click on it and the horn sounds. Prints `DONE`.
//
// Screenshots at 1920x1080, 1366x768 and 390 px wide. Every wait is on a selector or a page
// condition, bounded by TIMEOUT_MS; the whole run by a watchdog.

import { TIMEOUT_MS, check, env, launch as launchChromium, closeInput, nextLine, watchdog } from './common.mjs';
import path from 'node:path';

const URL_ = env('CONSOLE_URL');
const TOKEN = env('TOKEN');
const CRITICAL = env('CRITICAL_ID');      // critical, unacknowledged, not shelvable by an operator
const HIGH = env('HIGH_ID');              // high, on the same point as CRITICAL
// The gateway's own high alarm: the store whose secret is missing cannot send.
const GATEWAY = env('GATEWAY_ID');
const SHELVE = env('SHELVE_ID');          // high, the only alarm of its hazard source
const SHELVE_SOURCE = env('SHELVE_SOURCE');
const FAULT_POINT = env('FAULT_POINT');   // out of range
const STATE_POINT = env('STATE_POINT');   // a state point reading 1
const SHOTS = env('SCREENSHOT_DIR');

const guard = watchdog('console safety', 240);

const SIZES = [['1920', 1920, 1080], ['1366', 1366, 768], ['390', 390, 844]];

// Screenshots of the page at the three sizes, back at 1920x1080 afterwards.
async function shots(page, name) {
  for (const [tag, width, height] of SIZES) {
    await page.setViewportSize({ width, height });
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r())));
    await page.screenshot({ path: path.join(SHOTS, `console-safety-${name}-${tag}.png`), fullPage: true });
    const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    check(scroll <= inner, `no horizontal scroll at ${width} px on ${name}: ${scroll} > ${inner}`);
  }
  await page.setViewportSize({ width: 1920, height: 1080 });
}

const horn = (page) => page.evaluate(() => ({ ...document.body.dataset }));
async function waitHorn(page, state, tone) {
  try {
    await page.waitForFunction(
      ([s, t]) => document.body.dataset.horn === s && (t === null || document.body.dataset.tone === t),
      [state, tone],
    );
  } catch (e) {
    throw new Error(`horn not ${state}/${tone}: ${JSON.stringify(await horn(page))}: ${e.message}`);
  }
}
const beeps = async (page) => Number((await horn(page)).beeps || 0);

// With autoplay, or with the policy that blocks sound until the page is used.
const launch = (autoplay) =>
  launchChromium(autoplay ? 'no-user-gesture-required' : 'document-user-activation-required');

// A page already holding the token, as a kiosk's auto-login leaves it: no click before load.
async function kioskPage(browser, errors) {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: 'zh-CN' });
  await context.addInitScript((tok) => sessionStorage.setItem('hg.token', tok), TOKEN);
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(URL_);
  await page.locator('#conn.up').waitFor();
  return page;
}

const row = (page, id, where = '#alarm-rows') => page.locator(`${where} tr[data-alarm-id="${id}"]`);

async function act(page, id, where, action, fill) {
  await row(page, id, where).locator(`button[data-action="${action}"]`).click();
  await page.locator('#ack-dialog[open]').waitFor();
  if (fill) await fill();
  await page.click('#ack-submit');
  await page.locator('#ack-dialog').waitFor({ state: 'hidden' });
}

let browser = await launch(true);
const errors = [];
try {
  // ---- A ----
  const page = await kioskPage(browser, errors);
  await row(page, CRITICAL).waitFor();
  await waitHorn(page, 'sounding', 'critical');
  await page.waitForFunction(() => Number(document.body.dataset.beeps || 0) >= 1);
  check((await horn(page)).audio === 'running', 'audio runs in a kiosk without a click');
  check(await page.locator('#audio-blocked').isHidden(), 'no audio-blocked banner when sound plays');
  check((await page.locator('#who').textContent()).includes('值班员张三'), 'header names the holder');
  // The gateway's own fault (a store that cannot send) is shown to the duty officer.
  await page.locator('#gateway-problems', { hasText: 'historian' }).waitFor();
  check((await page.locator('#who').textContent()).includes('操作员'), 'header names the role');

  // Live value, value at trip and set-point in the row.
  const crit = row(page, CRITICAL);
  await crit.locator('.live', { hasText: '60.00' }).waitFor();
  check((await crit.locator('.limit').textContent()).includes('50'), 'set-point shown');
  check((await crit.locator('.trip').count()) === 1, 'value at trip shown');
  // Faults read as faults, state points as states, never a number.
  const fault = page.locator(`#point-rows tr[data-point="${FAULT_POINT}"] td.value`);
  await fault.filter({ hasText: '超量程' }).waitFor();
  check(!/\d/.test(await fault.textContent()), `a faulty reading shows no number: ${await fault.textContent()}`);
  await page.locator(`#point-rows tr[data-point="${STATE_POINT}"] td.value`, { hasText: '动作 (1)' }).waitFor();

  // By role: an operator may acknowledge the critical alarm, not shelve it.
  check((await crit.locator('button[data-action="ack"]').count()) === 1, 'ack offered');
  check((await crit.locator('button[data-action="shelve"]').count()) === 0, 'no shelve on critical for an operator');
  check((await row(page, SHELVE).locator('button[data-action="shelve"]').count()) === 1, 'shelve offered on high');
  await shots(page, 'load');
  // The gateway's own fault reads as the gateway's, in the operator's language.
  const own = await row(page, GATEWAY).locator('td.subject').textContent();
  check(own.includes('本网关（自诊断）'), `the gateway's self-check alarm names the gateway: ${own}`);

  // Silence is not acknowledge.
  await page.click('#silence');
  await waitHorn(page, 'silenced', 'critical');
  await page.locator('#silence.silenced', { hasText: '已消音至' }).waitFor();
  check((await crit.locator('button[data-action="ack"]').count()) === 1, 'still unacknowledged after silence');

  // Shelving asks for a reason, then keeps the alarm visible apart; its hazard source stays in alarm.
  await row(page, SHELVE).locator('button[data-action="shelve"]').click();
  await page.locator('#ack-dialog[open]').waitFor();
  check(await page.locator('#ack-duration-row').isVisible(), 'shelving asks how long');
  const durations = await page.locator('#ack-duration option').evaluateAll((os) => os.map((o) => Number(o.value)));
  check(durations.length > 0 && Math.max(...durations) <= 7200, `durations within the site's 2 h: ${durations}`);
  await page.click('#ack-submit');
  await page.locator('#ack-error', { hasText: '原因' }).waitFor();
  await page.fill('#ack-comment', '检修：探头标定中 (calibrating)');
  await page.click('#ack-submit');
  await page.locator('#ack-dialog').waitFor({ state: 'hidden' });
  await row(page, SHELVE, '#held-rows').waitFor();
  check((await page.textContent('#held-count')).includes('1'), 'shelved section is counted');
  const card = page.locator(`#sources .card[data-source="${SHELVE_SOURCE}"]`);
  check((await card.locator('.name').textContent()).includes('甲醇罐组'), 'the card names the hazard source');
  check((await card.locator('.name').textContent()).includes('3级'), 'and its GB 18218 grade');
  await card.locator('.verdict', { hasText: '已搁置' }).waitFor();
  check(!(await card.textContent()).includes('正常'), `card never 正常 with an active shelved alarm: ${await card.textContent()}`);
  check(await card.evaluate((c) => c.classList.contains('high')), 'card keeps the alarm colour');
  const shelvedPoint = await row(page, SHELVE, '#held-rows').getAttribute('data-alarm-id');
  const pointId = shelvedPoint.split(':')[0];
  check(await page.locator(`#point-rows tr[data-point="${pointId}"]`).evaluate((r) => r.classList.contains('in-alarm')),
    'the shelved point keeps its alarm colour');
  await shots(page, 'shelved');

  // Acknowledge what sounds; the horn stops.
  for (const id of [CRITICAL, HIGH, GATEWAY]) {
    await act(page, id, '#alarm-rows', 'ack', async () => {
      await page.fill('#ack-comment', '已通知现场');
      await page.selectOption('#ack-category', 'real_alarm');
    });
    await page.locator(`#alarm-rows tr.acked[data-alarm-id="${id}"]`).waitFor();
  }
  await waitHorn(page, 'off', null);
  check(await page.locator('#silence').isHidden(), 'no silence button with nothing to sound');

  // Unshelving an unacknowledged alarm sounds again.
  const before = await beeps(page);
  await act(page, SHELVE, '#held-rows', 'unshelve', null);
  await row(page, SHELVE).waitFor();
  await waitHorn(page, 'sounding', 'high');
  await page.waitForFunction((n) => Number(document.body.dataset.beeps || 0) > n, before);
  console.log('READY');
  await nextLine();

  // ---- B ----
  await page.locator('#conn-lost').waitFor();
  await waitHorn(page, 'sounding', 'comm');
  await page.locator('#point-rows tr.lost .age').first().waitFor();
  check(await page.evaluate(() => document.body.classList.contains('gateway-lost')), 'values greyed');
  await shots(page, 'lost');
  console.log('LOST');
  await nextLine();

  // ---- C ----
  await page.locator('#conn-lost').waitFor({ state: 'hidden' });
  await page.locator('#conn.up').waitFor();
  await waitHorn(page, 'sounding', 'high');
  check((await page.locator('#point-rows tr.lost').count()) === 0, 'values live again');
  await browser.close();

  // ---- D ----
  browser = await launch(false);
  const blocked = await kioskPage(browser, errors);
  await row(blocked, SHELVE).waitFor();
  await waitHorn(blocked, 'blocked', 'high');
  await blocked.locator('#audio-blocked').waitFor();
  check((await beeps(blocked)) === 0, 'no beep is counted while audio is blocked');
  await shots(blocked, 'audio-blocked');
  await blocked.click('#audio-blocked');
  await waitHorn(blocked, 'sounding', 'high');
  await blocked.waitForFunction(() => Number(document.body.dataset.beeps || 0) >= 1);
  check(await blocked.locator('#audio-blocked').isHidden(), 'banner gone once sound plays');
  check(errors.length === 0, `no script errors: ${errors.join('; ')}`);
  console.log('DONE');
} catch (e) {
  console.error(`console safety failed: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  closeInput();
  clearTimeout(guard);
}
