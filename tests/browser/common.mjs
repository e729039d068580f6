// What the console's browser scripts share: their environment, checks, a watchdog, the
// stdin handshake with the Rust test that owns the gateway, and headless Chromium started
// the way every one of them starts it.

import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

/** The environment variable `name`, or `fallback`; a script stops at once if neither is set. */
export const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`${name} is required`);
  return v;
};

/** How long one step may wait (a selector, a function, a navigation). */
export const TIMEOUT_MS = Number(env('TIMEOUT_MS', '30000'));

/** Throws with `what` unless `cond` holds. */
export function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

/** Ends the process (exit 3) if the script is still running after `seconds`. */
export function watchdog(name, seconds) {
  return setTimeout(() => {
    console.error(`${name}: watchdog fired after ${seconds} s`);
    process.exit(3);
  }, seconds * 1000);
}

let stdinLines;
/** The next line the Rust test writes to the script's stdin (it says when to go on). */
export function nextLine() {
  stdinLines ??= createInterface({ input: process.stdin });
  return new Promise((resolve) => stdinLines.once('line', resolve));
}

/** Stops reading stdin, so the script can exit. */
export function closeInput() {
  stdinLines?.close();
}

/** Headless Chromium as the tests run it; `autoplay` is Chromium's `--autoplay-policy`. */
export function launch(autoplay = 'no-user-gesture-required') {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-quic', '--disable-sync', `--autoplay-policy=${autoplay}`],
    timeout: TIMEOUT_MS,
  });
}
