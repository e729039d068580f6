// A point's trend in the console, drawn by the vendored uPlot from the gateway's history. Run by
// tests/it/console_trend.rs, which owns the gateway (POINT has READINGS stored readings, an
// alarm raised and acknowledged on it):
//
//   opens POINT's trend from the value table; checks the chart holds every stored reading,
//   the set-points as dashed lines and the alarm's raise and acknowledgement as marks; overlays
//   SAME_UNIT (one axis) and OTHER_UNIT (a second axis); switches to the shift range; saves
//   screenshots at 1920x1080, 1366x768 and 390 px (no horizontal scroll); prints `DONE`.

import { TIMEOUT_MS, check, env, launch, watchdog } from './common.mjs';
import path from 'node:path';

const URL_ = env('CONSOLE_URL');
const POINT = env('POINT');
const READINGS = Number(env('READINGS'));
const SAME_UNIT = env('SAME_UNIT');
const OTHER_UNIT = env('OTHER_UNIT');
const SHOTS = env('SCREENSHOT_DIR');

const guard = watchdog('console trend', 120);

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: 'zh-CN' });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(URL_);
  await page.locator('#conn.up').waitFor();
  // Enter on the focused button runs the same handler as a click, without depending on
  // where the button is at that instant: the device cards and alarm list arrive on their own
  // fetches and can move the table between the pointer's aim and its press.
  await page.locator(`#point-rows tr[data-point="${POINT}"] button.trend-open`).press('Enter');
  await page.locator('#trend-dialog[open] #trend-chart canvas').waitFor();
  await page.waitForFunction(() => window.hgTrend && window.hgTrend.points.length === 1);
  let tr = await page.evaluate(() => window.hgTrend);
  check(tr.points[0].id === POINT, `the trend is of ${POINT}`);
  check(tr.points[0].readings >= READINGS, `every stored reading drawn: ${tr.points[0].readings} < ${READINGS}`);
  const levels = tr.setpoints.map((s) => `${s.level}=${s.value}`).sort();
  check(JSON.stringify(levels) === JSON.stringify(['high=25', 'high_high=50']), `set-points drawn: ${levels}`);
  check(tr.marks.includes('raised') && tr.marks.includes('acknowledged'), `alarm marks: ${tr.marks}`);
  check(tr.axes.length === 1, `one unit, one axis: ${tr.axes}`);

  await page.selectOption('#trend-add', SAME_UNIT);
  await page.waitForFunction(() => window.hgTrend.points.length === 2);
  check((await page.evaluate(() => window.hgTrend.axes.length)) === 1, 'same unit shares the axis');
  await page.selectOption('#trend-add', OTHER_UNIT);
  await page.waitForFunction(() => window.hgTrend.points.length === 3);
  tr = await page.evaluate(() => window.hgTrend);
  check(tr.axes.length === 2, `a second unit gets its own axis: ${tr.axes}`);
  await page.click('#trend-dialog [data-range="28800"]');
  await page.waitForFunction(() => window.hgTrend.range === 28800);
  for (const [tag, width, height] of [['1920', 1920, 1080], ['1366', 1366, 768], ['390', 390, 844]]) {
    await page.setViewportSize({ width, height });
    await page.click('#trend-dialog [data-range="28800"]');
    await page.waitForFunction(() => window.hgTrend.range === 28800);
    await page.screenshot({ path: path.join(SHOTS, `console-trend-${tag}.png`) });
    const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    check(scroll <= inner, `no horizontal scroll at ${width} px: ${scroll} > ${inner}`);
  }
  check(errors.length === 0, `no script errors: ${errors.join('; ')}`);
  console.log('DONE');
} catch (e) {
  console.error(`console trend failed: ${e.stack || e}`);
  // What the console itself said: a failed history request is written under the chart.
  for (const p of browser.contexts().flatMap((c) => c.pages())) {
    const note = await p.evaluate(() => {
      const n = document.getElementById('trend-note');
      const d = document.getElementById('trend-dialog');
      return `trend dialog open: ${d && d.open}; note: ${n && n.textContent}`;
    }).catch((err) => `page not readable: ${err}`);
    console.error(note);
  }
  process.exitCode = 1;
} finally {
  await browser.close();
  clearTimeout(guard);
}
