// Names, places and device links in the console. Run by tests/it/console_devices.rs, which
// owns the gateway (a Modbus device and an MQTT broker, labels in the config, an alarm on
// LABELLED_POINT before the page opens) and the broker:
//
//   1. checks the point table and the alarm row name LABELLED_POINT by its label (NAME, PLACE),
//      the device card carries DEVICE_NAME, and the broker's card (BROKER) says online, with
//      its address and reconnects; screenshots at 1920x1080, 1366x768 and 390 px; prints
//      `READY`;
//   2. the Rust test stops the broker; waits for the card to say offline (coloured as a
//      fault) with the last error, saves screenshots, prints `DONE`.
//
// Every wait is on a selector or a page condition, bounded by TIMEOUT_MS; the whole run by a
// watchdog.

import { TIMEOUT_MS, check, env, launch, closeInput, nextLine, watchdog } from './common.mjs';
import path from 'node:path';

const URL_ = env('CONSOLE_URL');
const POINT = env('LABELLED_POINT');
const NAME = env('NAME');
const PLACE = env('PLACE');
const DEVICE = env('DEVICE');
const DEVICE_NAME = env('DEVICE_NAME');
const BROKER = env('BROKER');
const SHOTS = env('SCREENSHOT_DIR');

const guard = watchdog('console devices', 150);
const browser = await launch();
const errors = [];
const shots = async (page, name) => {
  for (const [w, h] of [[1920, 1080], [1366, 768], [390, 844]]) {
    await page.setViewportSize({ width: w, height: h });
    await page.screenshot({ path: path.join(SHOTS, `console-devices-${name}-${w}.png`) });
    if (w === 390) {
      const wide = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      check(wide <= 0, `${name}: no sideways scroll at 390 px (${wide} px over)`);
    }
  }
  await page.setViewportSize({ width: 1920, height: 1080 });
};
try {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: 'zh-CN' });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(URL_);
  await page.locator('#conn.up').waitFor();

  const row = page.locator(`#point-rows tr[data-point="${POINT}"]`);
  await row.locator('.label-name', { hasText: NAME }).waitFor();
  await row.locator('.label-place', { hasText: PLACE }).waitFor();
  await row.locator('td', { hasText: DEVICE_NAME }).first().waitFor();
  const alarm = page.locator(`#alarm-rows tr[data-alarm-id^="${POINT}:"]`).first();
  await alarm.locator('td.subject .label-name', { hasText: NAME }).waitFor();
  await alarm.locator('td.subject .label-id', { hasText: POINT }).waitFor();
  await page.locator(`.card[data-device="${DEVICE}"] .name`, { hasText: DEVICE_NAME }).waitFor();

  const broker = page.locator(`.card[data-device="${BROKER}"]`);
  await page.locator(`.card[data-device="${BROKER}"][data-online="true"]`).waitFor();
  check((await broker.locator('.verdict').textContent()) === '在线', 'the broker reads online');
  const detail = await broker.locator('.detail').first().textContent();
  check(detail.includes('MQTT 服务器 127.0.0.1:') && detail.includes('重连 0 次') && detail.includes('自 '),
    `address, since and reconnects: ${detail}`);
  check(await broker.evaluate((c) => c.classList.contains('ok')), 'an online broker is not coloured');
  await shots(page, 'online');
  console.log('READY');
  await nextLine();

  await page.locator(`.card[data-device="${BROKER}"][data-online="false"]`).waitFor();
  await broker.locator('.verdict', { hasText: /离线|通信中断/ }).waitFor();
  check(await broker.evaluate((c) => c.classList.contains('fault')), 'an offline broker is coloured as a fault');
  await broker.locator('.error-text', { hasText: '最近错误：' }).waitFor();
  await page.click('#lang');
  await broker.locator('.detail', { hasText: 'MQTT broker' }).first().waitFor();
  await broker.locator('.verdict', { hasText: /Offline|Communication lost/ }).waitFor();
  await shots(page, 'offline-en');
  check(errors.length === 0, `no script errors: ${errors.join('; ')}`);
  console.log('DONE');
} catch (e) {
  console.error(`console devices failed: ${e.stack || e}; page errors: ${errors.join('; ')}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  closeInput();
  clearTimeout(guard);
}
