// Early warnings (预警) in the console, apart from alarms. Run by tests/it/console_early_warning.rs,
// which owns the gateway: WARN_ID is an active early warning on POINT (medium priority,
// predicted to reach the high set-point 25 %LEL at PREDICTED_MS), ALARM_ID an active high
// alarm on another point of the same hazard source.
//
//   with the browser in the site's time zone (Asia/Shanghai), checks the warning's row: violet
//   label 预警 (no priority colour), the priority named beside it, "预计 HH:MM 达到 高报（一级） 25
//   %LEL" in place of a trip value and limit; the alarm's row as before; the counters and the
//   horn by priority; the hazard-source card and the value table; the point's trend with the
//   projected trend to the set-point; the same in English; screenshots at 1920 and 390 px (no
//   horizontal scroll); prints `DONE`.

import { TIMEOUT_MS, check, env, launch, watchdog } from './common.mjs';
import path from 'node:path';

const URL_ = env('CONSOLE_URL');
const WARN_ID = env('WARN_ID');
const ALARM_ID = env('ALARM_ID');
const POINT = env('POINT');
const PREDICTED_MS = Number(env('PREDICTED_MS'));
const SHOTS = env('SCREENSHOT_DIR');
const ZONE = 'Asia/Shanghai';

const guard = watchdog('console early warning', 110);

// The predicted crossing as the console should write it in ZONE: `HH:MM`, with `MM-DD`
// before it when it falls on another day than today.
function expectedTime() {
  const parts = (ms) => Object.fromEntries(new Intl.DateTimeFormat('en-GB', {
    timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  const p = parts(PREDICTED_MS);
  const n = parts(Date.now());
  const hm = `${p.hour}:${p.minute}`;
  return p.year === n.year && p.month === n.month && p.day === n.day ? hm : `${p.month}-${p.day} ${hm}`;
}

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: 'zh-CN', timezoneId: ZONE });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(URL_);
  await page.locator('#conn.up').waitFor();
  const warnRow = page.locator(`#alarm-rows tr[data-alarm-id="${WARN_ID}"]`);
  const alarmRow = page.locator(`#alarm-rows tr[data-alarm-id="${ALARM_ID}"]`);
  await warnRow.waitFor();
  await alarmRow.waitFor();
  // The value table fills on its own poll.
  await page.locator(`#point-rows tr[data-point="${POINT}"].in-warning`).waitFor();

  const look = (row) => row.evaluate((tr) => {
    const prio = tr.querySelector('.prio');
    return {
      cls: tr.className,
      prio: prio.textContent,
      prioCls: prio.className,
      prioBg: getComputedStyle(prio).backgroundColor,
      rowBg: getComputedStyle(tr).backgroundColor,
      of: tr.querySelector('.prio-of')?.textContent ?? null,
      predict: tr.querySelector('td.value .predict')?.textContent ?? null,
      trip: tr.querySelector('td.value .trip')?.textContent ?? null,
      limit: tr.querySelector('td.value .limit')?.textContent ?? null,
      state: tr.querySelector('td.state').textContent,
      alarm: tr.cells[4].textContent,
    };
  });
  const hm = expectedTime();
  let w = await look(warnRow);
  const a = await look(alarmRow);
  const violet = 'rgb(191, 90, 242)';
  const priorityColours = ['rgb(255, 59, 48)', 'rgb(255, 149, 0)', 'rgb(255, 214, 10)', 'rgb(90, 200, 250)'];
  check(w.prio === '预警' && w.prioCls === 'prio early', `the warning's label: ${JSON.stringify(w)}`);
  check(w.prioBg === violet && !priorityColours.includes(w.prioBg), `the warning's colour is its own: ${w.prioBg}`);
  check(!/\b(critical|high|medium|low)\b/.test(w.cls) && /\bearly\b/.test(w.cls), `no priority class on the warning's row: ${w.cls}`);
  check(w.rowBg !== a.rowBg, `the warning's row is not coloured as an alarm's: ${w.rowBg} vs ${a.rowBg}`);
  check(w.of === '中', `the warning's own priority named beside it: ${w.of}`);
  check(w.predict === `预计 ${hm} 达到 高报（一级） 25 %LEL`, `predicted crossing: ${w.predict} (want ${hm})`);
  check(w.trip === null && w.limit === null, `no trip value or limit on a warning: ${w.trip} / ${w.limit}`);
  check(w.state === '预警 未确认', `warning state: ${w.state}`);
  check(w.alarm === '预警 · 高报（一级）', `what the warning is: ${w.alarm}`);
  check(a.prio === '高' && a.prioCls === 'prio high' && a.prioBg === 'rgb(255, 149, 0)', `the alarm as before: ${JSON.stringify(a)}`);
  check(a.limit !== null && a.predict === null && a.state === '报警 未确认', `the alarm's limit and state: ${JSON.stringify(a)}`);
  // Counters and the horn treat the warning by its priority: it counts, and a medium one does
  // not sound under the default `sound_from = high` (the high alarm does).
  const counts = await page.locator('#alarm-counts').textContent();
  check(counts === '未确认 2 · 共 2', `counts: ${counts}`);
  await page.waitForFunction(() => document.body.dataset.tone === 'high');
  const card = await page.locator('#sources .card[data-source="MHS-001"]').evaluate((c) => ({ cls: c.className, verdict: c.querySelector('.verdict').textContent, detail: c.querySelector('.detail').textContent }));
  check(card.cls === 'card high' && card.verdict === '1 条报警' && card.detail.includes('1 条预警'), `hazard-source card: ${JSON.stringify(card)}`);
  const valueColour = await page.locator(`#point-rows tr[data-point="${POINT}"] td.value`).evaluate((td) => getComputedStyle(td).color);
  check(valueColour === violet, `the warned point's value is violet: ${valueColour}`);
  await page.screenshot({ path: path.join(SHOTS, 'console-early-warning-1920.png') });

  // The trend: the warning's marks, its text and the projected trend to 25 at the crossing.
  await page.locator(`#point-rows tr[data-point="${POINT}"] button.trend-open`).press('Enter');
  await page.locator('#trend-dialog[open] #trend-chart canvas').waitFor();
  await page.waitForFunction(() => window.hgTrend && window.hgTrend.warnings && window.hgTrend.warnings.length === 1);
  const tr = await page.evaluate(() => window.hgTrend);
  check(tr.warnings[0].predicted_ms === PREDICTED_MS, `trend warning: ${JSON.stringify(tr.warnings)}`);
  check(tr.warnings[0].text === `预计 ${hm} 达到 高报（一级） 25 %LEL`, `trend warning text: ${tr.warnings[0].text}`);
  check(tr.projections.length === 1 && tr.projections[0].to_ms === PREDICTED_MS && tr.projections[0].value === 25,
    `projected trend: ${JSON.stringify(tr.projections)}`);
  check(tr.marks.includes('early_raised'), `the warning's raise marked: ${tr.marks}`);
  const shown = await page.locator('#trend-warnings').textContent();
  check(shown.includes(POINT) && shown.includes(`预计 ${hm} 达到`), `the trend names the warning: ${shown}`);
  await page.screenshot({ path: path.join(SHOTS, 'console-early-warning-trend.png') });
  await page.locator('#trend-close').press('Enter');

  // English.
  await page.locator('#lang').press('Enter');
  await page.waitForFunction((id) => document.querySelector(`#alarm-rows tr[data-alarm-id="${id}"] .prio`).textContent === 'Early warning', WARN_ID);
  w = await look(warnRow);
  check(w.of === 'MEDIUM' && w.state === 'Warning, unacked', `English label and state: ${JSON.stringify(w)}`);
  check(w.predict === `Predicted to reach High (level 1) 25 %LEL at ${hm}`, `English prediction: ${w.predict}`);
  check(w.alarm === 'Early warning · High (level 1)', `English description: ${w.alarm}`);
  const detail = await page.locator('#sources .card[data-source="MHS-001"] .detail').textContent();
  check(detail.includes('1 early warning(s)'), `English card: ${detail}`);
  // Chinese only in the data (the hazard source's name) and on the switch back.
  const left = (await page.locator('body').innerText()).replace(/液氯储罐区|^中文$/gm, '').match(/.{0,20}[\u4e00-\u9fff]+.{0,20}/g);
  check(!left, `no Chinese left in English outside the data: ${left}`);
  await page.screenshot({ path: path.join(SHOTS, 'console-early-warning-en-1920.png') });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(SHOTS, 'console-early-warning-en-390.png'), fullPage: true });
  const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check(scroll <= inner, `no horizontal scroll at 390 px: ${scroll} > ${inner}`);
  check(errors.length === 0, `no script errors: ${errors.join('; ')}`);
  console.log('DONE');
} catch (e) {
  console.error(`console early warning failed: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  clearTimeout(guard);
}
