// Shared helpers of the browser suite (suite.mjs). Every wait is one of Playwright's own waits,
// bounded by a timeout; nothing sleeps for a fixed time.

import path from 'node:path';

/** The timeout of one step (all of its waits together). */
export const STEP_TIMEOUT_MS = 20_000;

/**
 * The timeout of each Playwright wait (navigation, locator, request): shorter than a step, so a
 * missing element fails with Playwright's own message rather than the step's deadline.
 */
export const WAIT_TIMEOUT_MS = 10_000;

/** The flags the browser is launched with (Debian's Chromium, headless, as root in CI). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  // CI containers often have a tiny /dev/shm; Debian's launcher adds this flag only when it can
  // measure /dev/shm, and its check breaks when /dev/shm is listed twice by findmnt.
  '--disable-dev-shm-usage',
];

/** A step failed: the message is what the suite reports as `error`. */
export class StepFailure extends Error {}

export function fail(message) {
  throw new StepFailure(message);
}

let artifactsDir = null;
const taken = [];

/** Where screenshots go (an absolute directory that exists). */
export function setArtifacts(dir) {
  artifactsDir = dir;
}

/** The screenshots taken so far, as file names inside the artifacts directory. */
export function screenshots() {
  return [...taken];
}

/** A full-page screenshot at `${artifacts}/${name}.png`. */
export async function screenshot(page, name) {
  if (!artifactsDir) fail('screenshot before setArtifacts');
  const file = `${name}.png`;
  await page.screenshot({ path: path.join(artifactsDir, file), fullPage: true });
  if (!taken.includes(file)) taken.push(file);
  return file;
}

/**
 * Watches a context: console messages of type error (Chromium reports CSP violations this way)
 * and uncaught page errors are recorded in `ctx.problems`, which the runner checks after each
 * step, unless the step allowed them with `allowConsoleError`.
 */
export function watch(context, ctx) {
  context.on('console', (message) => {
    if (message.type() !== 'error') return;
    const where = message.location();
    // Chromium asks every origin for /favicon.ico by itself and logs the vault's 404 as a console
    // error; the pages don't link it (their CSP, default-src 'none', would refuse a data: icon).
    if (isFaviconMiss(message.text(), where)) return;
    if (ctx.allowed.some((pattern) => pattern.test(message.text()))) return;
    const at = where && where.url ? ` (at ${where.url}:${where.lineNumber})` : '';
    ctx.problems.push(`console error on ${message.page()?.url() ?? '?'}: ${message.text()}${at}`);
  });
  context.on('weberror', (error) => {
    ctx.problems.push(`uncaught error on ${error.page()?.url() ?? '?'}: ${error.error().message}`);
  });
  return context;
}

/**
 * Lets a console error matching `pattern` pass during the current step: a page answered with an
 * error status on purpose (Chromium logs "Failed to load resource: the server responded with a
 * status of 401" for the document itself).
 */
export function allowConsoleError(ctx, pattern) {
  ctx.allowed.push(pattern);
}

/** Allows the console error Chromium logs for a document answered with this status. */
export function allowStatus(ctx, status) {
  allowConsoleError(ctx, new RegExp(`^Failed to load resource: the server responded with a status of ${status} `));
}

function isFaviconMiss(text, where) {
  return (
    text.startsWith('Failed to load resource: the server responded with a status of 404') &&
    new URL(where?.url || 'about:blank').pathname === '/favicon.ico'
  );
}

/** A new browser context, watched, with WAIT_TIMEOUT_MS as the default of every wait. */
export async function newContext(ctx, options = {}) {
  const context = watch(await ctx.browser.newContext(options), ctx);
  context.setDefaultTimeout(WAIT_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(WAIT_TIMEOUT_MS);
  return context;
}

/** Navigates and checks the status of the main document's response. */
export async function visit(page, url, status = 200) {
  const response = await page.goto(url);
  if (!response) fail(`no response for ${url}`);
  expectStatus(response, status, `GET ${url}`);
  return response;
}

/** A response (page navigation or `context.request`) has this status. */
export function expectStatus(response, status, what = response.url()) {
  if (response.status() !== status) fail(`${what}: expected status ${status}, got ${response.status()}`);
}

/** A response has this header value (names are case-insensitive). */
export function expectHeader(response, name, value, what = response.url()) {
  const actual = response.headers()[name.toLowerCase()];
  if (actual !== value) fail(`${what}: expected header ${name}: ${value}, got ${actual ?? '(none)'}`);
}

/** The locator becomes visible. */
export async function expectVisible(locator, what = String(locator)) {
  try {
    await locator.first().waitFor({ state: 'visible' });
  } catch (error) {
    fail(`${what} is not visible: ${firstLine(error)}`);
  }
}

/**
 * The locator becomes visible with a text containing `text` (a string, case-insensitive, or a
 * RegExp); the failure message shows what it contains instead.
 */
export async function expectText(locator, text, what = String(locator)) {
  try {
    await locator.filter({ hasText: text }).first().waitFor({ state: 'visible' });
  } catch (error) {
    const actual = await locator
      .first()
      .textContent({ timeout: 1_000 })
      .catch(() => null);
    fail(
      `${what}: expected a text containing ${JSON.stringify(String(text))}, ` +
        (actual === null ? `found no such element (${firstLine(error)})` : `it shows ${JSON.stringify(actual.trim())}`),
    );
  }
}

/** The page arrives at exactly this URL. */
export async function expectUrl(page, url) {
  try {
    await page.waitForURL(url);
  } catch {
    fail(`expected to be at ${url}, the page is at ${page.url()}`);
  }
}

/** The page does not scroll sideways at its viewport width. */
export async function expectNoHorizontalScroll(page, width) {
  const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  if (scrollWidth > width) fail(`${page.url()} scrolls sideways at ${width} px: scrollWidth is ${scrollWidth}`);
}

/** Runs `promise` with a deadline; rejects with a StepFailure when it passes. */
export async function withDeadline(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new StepFailure(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

export function firstLine(error) {
  return String(error?.message ?? error).split('\n')[0];
}
