// The alarm performance page (报警绩效), opened from the console's header link in a new tab:
// it shows the week's KPI tiles with the verdicts the API gives, the daily load and priority
// charts, the flood periods, and for the bad actor the tuning suggestion beside its current
// settings; switched to English, its own text follows. Run by tests/it/console_performance.rs,
// which has fed a chattering level through Mosquitto and passes what the API answered. Prints
// `DONE`.

import { TIMEOUT_MS, check, env, launch, watchdog } from './common.mjs';
import path from 'node:path';

const URL_ = env('CONSOLE_URL');
const WEEK = env('WEEK');
const ALARM = env('ALARM');
const RAISES = env('RAISES');
const FLOODS = Number(env('FLOODS'));
const VERDICTS = JSON.parse(env('VERDICTS'));
const SHOTS = env('SCREENSHOT_DIR');

const guard = watchdog('console performance', 120);
const browser = await launch();
const errors = [];
try {
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, locale: 'zh-CN' });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(URL_);
  await page.waitForSelector('#performance-link');
  check((await page.textContent('#performance-link')) === '报警绩效', 'the console links the performance page in Chinese');
  const [perf] = await Promise.all([context.waitForEvent('page'), page.click('#performance-link')]);
  perf.setDefaultTimeout(TIMEOUT_MS);
  perf.on('pageerror', (e) => errors.push(String(e)));
  await perf.waitForLoadState('domcontentloaded');
  check(new URL(perf.url()).pathname === '/performance', `opened ${perf.url()}`);
  // The console stays open and live behind it.
  check(!page.isClosed(), 'the console stays open');

  const show = async (week) => {
    await perf.fill('#week', week);
    await perf.evaluate(() => { window.hgPerformance = undefined; });
    await perf.click('#period button[type=submit]');
    await perf.waitForFunction(() => window.hgPerformance && (window.hgPerformance.error || window.hgPerformance.bad), null);
    return perf.evaluate(() => window.hgPerformance);
  };
  let p = await show(WEEK);
  check(!p.error, `the page loaded: ${p.error}`);
  check(p.week === WEEK, `week ${p.week}`);
  check(p.tiles.length === 13, `${p.tiles.length} tiles`);
  for (const [label, verdict] of Object.entries(VERDICTS)) {
    const tile = p.tiles.find((t) => t.label === label);
    check(tile, `tile ${label} in ${JSON.stringify(p.tiles.map((t) => t.label))}`);
    check(tile.verdict === verdict, `${label}: verdict ${tile.verdict}, the API says ${verdict}`);
  }
  check(p.charts === 2, `${p.charts} charts`);
  check(p.days === 7, `${p.days} days in a week`);
  check(p.floods === FLOODS, `${p.floods} floods, the API says ${FLOODS}`);
  const bad = p.bad.find((r) => r[0] === ALARM);
  check(bad, `${ALARM} among the bad actors: ${JSON.stringify(p.bad)}`);
  check(bad[1] === RAISES, `raises ${bad[1]}, the journal holds ${RAISES}`);
  check(bad[3] === '0 / 0 s / 0 s', `current settings ${bad[3]}`);
  check(bad[4] !== '保持现设定' && bad[4] !== '（非越限报警或无历史数据）' && bad[4].includes(' / '), `a suggestion: ${bad[4]}`);
  check(/→ [0-9]+ \/ 0（/.test(bad[5]), `no chattering with the suggestion: ${bad[5]}`);
  const canvases = await perf.$$eval('#daily-chart canvas, #prio-chart canvas', (c) => c.length);
  check(canvases === 2, `${canvases} chart canvases`);
  await perf.screenshot({ path: path.join(SHOTS, 'performance-zh.png'), fullPage: true });

  // English: the page's own text follows; data (alarm ids, times) stays as it is.
  await perf.evaluate(() => { window.hgPerformance = undefined; });
  await perf.click('#lang');
  await perf.waitForFunction(() => document.documentElement.lang === 'en' && window.hgPerformance && window.hgPerformance.bad, null);
  p = await perf.evaluate(() => window.hgPerformance);
  check(p.tiles.some((t) => t.label === 'Chattering alarms'), `English tiles: ${JSON.stringify(p.tiles.map((t) => t.label))}`);
  const heading = await perf.textContent('#bad-h');
  check(heading.startsWith('Most frequent alarms'), `English heading ${heading}`);

  // Another week has none of it.
  const [y, w] = WEEK.split('-W').map(Number);
  const other = `${w > 1 ? y : y - 1}-W${String(w > 1 ? w - 1 : 52).padStart(2, '0')}`;
  p = await show(other);
  check(!p.error && p.bad.length === 0 && p.floods === 0, `week ${other} is empty: ${JSON.stringify(p)}`);
  check(errors.length === 0, `no page errors: ${errors.join('; ')}`);
  console.log('DONE');
} finally {
  clearTimeout(guard);
  await browser.close();
}
