// The console in English, every page: no Chinese left in its own text (labels, buttons,
// headings, states, options, messages), only in data (names from the config, users, comments),
// which the Rust test lists in DATA (separated by `|`). Run by tests/it/console_english.rs,
// which owns the gateway and has raised alarms and journaled a Chinese acknowledgement before
// the page opens. Last, switched back to Chinese, the journal's choices follow the language. Each page is checked and saved at 1920x1080, 1366x768 and 390 px, where
// nothing may scroll sideways; prints `DONE`.

import { TIMEOUT_MS, check, env, launch, watchdog } from './common.mjs';
import path from 'node:path';

const URL_ = env('CONSOLE_URL');
const POINT = env('POINT');
const DATA = env('DATA').split('|').filter(Boolean).sort((a, b) => b.length - a.length);
const SHOTS = env('SCREENSHOT_DIR');
// CJK ideographs, CJK punctuation and full-width forms.
const CHINESE = /[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]/;

const guard = watchdog('console english', 170);

const browser = await launch();
const errors = [];
try {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: 'en-US' });
  await context.addInitScript(() => localStorage.setItem('hg.lang', 'en'));
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on('pageerror', (e) => errors.push(String(e)));

  // Every piece of text the page shows (in `scope`), options and tooltips included, with the
  // data taken out; what is left must hold no Chinese.
  const english = async (name, scope) => {
    const texts = await page.evaluate((sel) => {
      const root = document.querySelector(sel);
      const out = [document.title, root.innerText];
      for (const e of root.querySelectorAll('[title], [aria-label], option, input[placeholder]')) {
        out.push(e.getAttribute('title') || '', e.getAttribute('aria-label') || '', e.textContent || '',
          e.getAttribute('placeholder') || '');
      }
      // The language switch names Chinese in Chinese, marked with its `lang`.
      const declared = [...document.querySelectorAll('[lang^="zh"]')].filter((e) => e !== document.documentElement)
        .map((e) => e.textContent).filter(Boolean);
      return { out, declared };
    }, scope);
    const remove = [...DATA, ...texts.declared].sort((a, b) => b.length - a.length);
    for (let text of texts.out) {
      for (const d of remove) text = text.split(d).join('');
      const lines = text.split('\n').filter((l) => CHINESE.test(l));
      check(lines.length === 0, `${name}: Chinese left in the English console: ${JSON.stringify(lines)}`);
    }
  };
  const shots = async (name) => {
    for (const [w, h] of [[1920, 1080], [1366, 768], [390, 844]]) {
      await page.setViewportSize({ width: w, height: h });
      await page.screenshot({ path: path.join(SHOTS, `console-en-${name}-${w}.png`) });
      if (w === 390) {
        const wide = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        check(wide <= 0, `${name}: no sideways scroll at 390 px (${wide} px over)`);
      }
    }
    await page.setViewportSize({ width: 1920, height: 1080 });
  };

  await page.goto(URL_);
  await page.locator('#conn.up').waitFor();
  check((await page.getAttribute('html', 'lang')) === 'en', 'html lang en');
  await page.locator(`#alarm-rows tr[data-alarm-id^="${POINT}:"]`).first().waitFor();
  await page.locator('#devices .card').first().waitFor();
  await page.locator('#sound.on, #audio-blocked').first().waitFor({ state: 'attached' });
  await english('main', 'body');
  await shots('main');

  // The acknowledge dialog, single and for every alarm of the point.
  await page.locator(`#alarm-rows tr[data-alarm-id^="${POINT}:"] button[data-action="ack"]`).first().click();
  await page.locator('#ack-dialog[open]').waitFor();
  await page.click('#ack-submit');
  await page.locator('#ack-error', { hasText: 'Please' }).waitFor();
  await english('ack dialog', '#ack-dialog');
  await shots('ack-dialog');
  await page.click('#ack-cancel');
  await page.locator(`#alarm-rows tr[data-alarm-id^="${POINT}:"] button[data-action="ack-subject"]`).first().click();
  await page.locator('#ack-dialog[open]').waitFor();
  await english('acknowledge all dialog', '#ack-dialog');
  await page.click('#ack-cancel');
  await page.locator(`#alarm-rows tr[data-alarm-id^="${POINT}:"] button[data-action="shelve"]`).first().click();
  await page.locator('#ack-dialog[open]').waitFor();
  await english('shelve dialog', '#ack-dialog');
  await shots('shelve-dialog');
  await page.click('#ack-cancel');

  // The journal and the handover.
  await page.click('#journal-btn');
  await page.locator('#journal-dialog[open]').waitFor();
  await page.locator('#j-count', { hasText: 'entries' }).waitFor();
  await page.locator('#j-rows tr[data-category]').first().waitFor();
  await english('journal', '#journal-dialog');
  await shots('journal');
  await page.click('#j-handover');
  await page.locator('#j-summary:not([hidden]) [data-h="categories"]').waitFor();
  await english('handover', '#journal-dialog');
  await shots('handover');
  await page.click('#j-close');

  // The trend.
  // Enter on the focused button runs the same handler as a click, without depending on
  // where the button is at that instant: the device cards and alarm list arrive on their own
  // fetches and can move the table between the pointer's aim and its press.
  await page.locator(`#point-rows tr[data-point="${POINT}"] button.trend-open`).press('Enter');
  await page.locator('#trend-dialog[open] #trend-chart canvas').waitFor();
  await english('trend', '#trend-dialog');
  await shots('trend');
  await page.click('#trend-close');

  // Back to Chinese: the journal's choices, built while it was English, follow.
  await page.click('#lang');
  await page.locator('#alarms-h', { hasText: '活动报警' }).waitFor();
  await page.click('#journal-btn');
  await page.locator('#journal-dialog[open]').waitFor();
  const choices = await page.$$eval('#j-priority option, #j-category option', (os) => os.map((o) => o.textContent));
  check(choices.includes('紧急 +') && choices.includes('检修') && !choices.includes('CRITICAL +'),
    `the journal's choices in Chinese: ${choices}`);
  await page.click('#j-close');
  check(errors.length === 0, `no script errors: ${errors.join('; ')}`);
  console.log('DONE');
} catch (e) {
  console.error(`console english failed: ${e.stack || e}; page errors: ${errors.join('; ')}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  clearTimeout(guard);
}
