// The completeness page (数据完整率), opened from the console's header link in a new tab. Run by
// tests/it/console_completeness.rs, which owns the gateway and passes in EXPECT what
// /api/v1/completeness and the daily report answer, written the way the page should show it
// (day, hazard-source rows, POINT's row under DRILL, the gaps, the shifts, the last day of the
// 7-day chart); the API takes TOKEN:
//
//   logs in on the console with TOKEN, opens the page from its link; checks the default day (yesterday on the gateway's clock) and every cell of those tables;
//   drills into DRILL; downloads the day's CSV and JSON and compares them with the API's;
//   switches to English; picks another day; saves screenshots at 1600 and 390 px; prints
//   `DONE`.

import { TIMEOUT_MS, check, env, launch, watchdog } from './common.mjs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

const URL_ = env('CONSOLE_URL');
const EXPECT = JSON.parse(env('EXPECT'));
const DRILL = env('DRILL');
const POINT = env('POINT');
const TOKEN = env('TOKEN');
const SHOTS = env('SCREENSHOT_DIR');

const guard = watchdog('console completeness', 140);
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const browser = await launch();
const errors = [];
try {
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, locale: 'zh-CN', acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(URL_);
  await page.locator('#login-dialog[open]').waitFor();
  await page.fill('#login-token', TOKEN);
  await page.locator('#login-token').press('Enter');
  await page.locator('#login-dialog').waitFor({ state: 'hidden' });
  await page.locator('#conn.up').waitFor();
  await page.waitForSelector('#completeness-link');
  check((await page.textContent('#completeness-link')) === '数据完整率', 'the console links the completeness page in Chinese');
  const [ledger] = await Promise.all([context.waitForEvent('page'), page.locator('#completeness-link').press('Enter')]);
  ledger.setDefaultTimeout(TIMEOUT_MS);
  ledger.on('pageerror', (e) => errors.push(String(e)));
  await ledger.waitForLoadState('domcontentloaded');
  check(new URL(ledger.url()).pathname === '/completeness', `opened ${ledger.url()}`);
  check(!page.isClosed(), 'the console stays open');

  await ledger.waitForFunction(() => window.hgCompleteness && (window.hgCompleteness.error || window.hgCompleteness.sources));
  let c = await ledger.evaluate(() => window.hgCompleteness);
  check(!c.error, `the page loaded: ${c.error}`);
  check(c.day === EXPECT.day && (await ledger.inputValue('#day')) === EXPECT.day, `default day ${c.day}, want ${EXPECT.day}`);
  check(same(c.sources, EXPECT.sources), `hazard sources\n page ${JSON.stringify(c.sources)}\n API  ${JSON.stringify(EXPECT.sources)}`);
  check(same(c.gaps, EXPECT.gaps), `gaps\n page ${JSON.stringify(c.gaps)}\n API  ${JSON.stringify(EXPECT.gaps)}`);
  check(same(c.shifts, EXPECT.shifts), `shifts\n page ${JSON.stringify(c.shifts)}\n API  ${JSON.stringify(EXPECT.shifts)}`);
  check(c.gaps.some((g) => g[1] === POINT && g[2] === '00:03:00' && g[3] === '00:04:00' && g[5] === '通信中断'),
    `the broker outage listed: ${JSON.stringify(c.gaps)}`);
  // Colour is never the only cue: a rate under the target is marked, and classed for colour.
  const marked = c.sources.flatMap((r) => r.slice(2, 4)).filter((x) => x.endsWith('▼')).length;
  check(marked > 0 && c.below === marked, `rates under the target: ${c.below} coloured, ${marked} marked`);
  check(c.late.length === 0 && await ledger.locator('#late-none').isVisible(), `no uplink, nothing late: ${JSON.stringify(c.late)}`);
  check(c.week.days.length === 7 && c.week.days[6] === EXPECT.day, `7 days charted: ${c.week.days}`);
  check(same(c.week.data.map((d) => d[6]), EXPECT.week_last), `the chart's last day ${JSON.stringify(c.week.data.map((d) => d[6]))} vs ${EXPECT.week_last}`);
  check((await ledger.locator('#week-chart canvas').count()) === 1, 'the chart is drawn');
  check(await ledger.locator('#points-section').isHidden(), 'no points before a drill-down');
  const belowColour = await ledger.locator('#source-rows td.rate.below').first().evaluate((td) => getComputedStyle(td).color);
  check(belowColour === 'rgb(255, 69, 58)', `a rate under the target is red: ${belowColour}`);

  // Drill down into one hazard source: its points, and only its gaps and shifts.
  await ledger.locator(`#source-rows tr[data-source="${DRILL}"] button.drill`).press('Enter');
  await ledger.waitForFunction((d) => window.hgCompleteness.drill === d, DRILL);
  c = await ledger.evaluate(() => window.hgCompleteness);
  check(same(c.points, EXPECT.points), `points of ${DRILL}\n page ${JSON.stringify(c.points)}\n API  ${JSON.stringify(EXPECT.points)}`);
  check(same(c.gaps, EXPECT.gaps.filter((g) => g[0].endsWith(DRILL))), `gaps of ${DRILL}: ${JSON.stringify(c.gaps)}`);
  check(c.shifts.length > 0 && c.shifts.every((r) => r[1].endsWith(DRILL)), `shifts of ${DRILL}: ${JSON.stringify(c.shifts)}`);
  await ledger.screenshot({ path: path.join(SHOTS, 'console-completeness-1600.png'), fullPage: true });

  // The day's files are the API's.
  for (const [link, file] of [['#report-csv', `completeness-${EXPECT.day}.csv`], ['#report-json', `completeness-${EXPECT.day}.json`]]) {
    const [dl] = await Promise.all([ledger.waitForEvent('download'), ledger.locator(link).press('Enter')]);
    check(dl.suggestedFilename() === file, `download named ${dl.suggestedFilename()}`);
    // Byte for byte (a text decoder would drop the CSV's byte-order mark).
    const got = await readFile(await dl.path());
    const href = await ledger.locator(link).getAttribute('href');
    const want = Buffer.from(await (await fetch(new URL(href, URL_), { headers: { Authorization: `Bearer ${TOKEN}` } })).arrayBuffer());
    check(got.equals(want), `${file} is the API's (${got.length} vs ${want.length} bytes)`);
    const text = got.toString('utf8');
    if (link === '#report-csv') check(text.startsWith('\ufeff') && text.includes(POINT), 'the CSV has its BOM and the point');
  }

  // English.
  await ledger.locator('#lang').press('Enter');
  await ledger.waitForFunction(() => document.documentElement.lang === 'en');
  c = await ledger.evaluate(() => window.hgCompleteness);
  check(same(c.points, EXPECT.points), 'the same figures in English');
  check(c.gaps.every((g) => g[5] === 'Communication lost'), `English causes: ${JSON.stringify(c.gaps)}`);
  const heads = await ledger.locator('thead th').allTextContents();
  check(heads.includes('Online rate') && heads.includes('Completeness'), `English headings: ${heads}`);
  const left = (await ledger.locator('body').innerText()).replace(/液氯储罐区|甲醇罐区|^中文$/gm, '').match(/.{0,20}[\u4e00-\u9fff]+.{0,20}/g);
  check(!left, `no Chinese left outside the data: ${left}`);
  check((await ledger.locator('#report-csv').getAttribute('href')).endsWith('lang=en'), 'the CSV link asks for English');
  await ledger.setViewportSize({ width: 390, height: 844 });
  await ledger.screenshot({ path: path.join(SHOTS, 'console-completeness-en-390.png'), fullPage: true });
  const [scroll, inner] = await ledger.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check(scroll <= inner, `no horizontal page scroll at 390 px: ${scroll} > ${inner}`);
  await ledger.setViewportSize({ width: 1600, height: 1000 });

  // Another day: before the gateway first ran, nothing was known, so nothing was online.
  await ledger.fill('#day', '2026-12-06');
  await ledger.evaluate(() => { window.hgCompleteness = undefined; });
  await ledger.locator('#apply').press('Enter');
  await ledger.waitForFunction(() => window.hgCompleteness && (window.hgCompleteness.error || window.hgCompleteness.sources));
  c = await ledger.evaluate(() => window.hgCompleteness);
  check(c.day === '2026-12-06' && c.sources.length === 2 && c.sources.every((r) => r[2] === '0.00 % ▼'), `the day before: ${JSON.stringify(c.sources)}`);
  check(errors.length === 0, `no script errors: ${errors.join('; ')}`);
  console.log('DONE');
} catch (e) {
  console.error(`console completeness failed: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  clearTimeout(guard);
}
