// The browser suite: Debian's Chromium, driven by playwright-core, against a running vault
// (crates/tokenvault/tests/e2e/browser.rs starts the vault and the fakes, then runs this).
//
//   node suite.mjs '{"vault": "http://127.0.0.1:PORT", "fakes_control": "http://127.0.0.1:PORT",
//                    "email": "...", "password": "...", "artifacts": "/abs/dir",
//                    "chromium": "/usr/bin/chromium"}'
//
// Runs the steps below in order, each within STEP_TIMEOUT_MS; a console error (CSP violations
// included) or an uncaught page error during a step fails it. Prints exactly one JSON line to
// stdout: {"ok": true, "steps": [...], "screenshots": [...]} or
// {"ok": false, "failed_step": "...", "error": "..."} (and exits 1). Details go to stderr.
//
// A step is {name, run: async (ctx) => ...}. ctx holds the config (ctx.config), the browser, and,
// from sign_in on, the signed-in ctx.context / ctx.page (operator ctx.config.email). New steps
// go before sign_out, which must stay last.

import { chromium } from 'playwright-core';

import {
  CHROMIUM_ARGS,
  STEP_TIMEOUT_MS,
  StepFailure,
  allowStatus,
  expectHeader,
  expectNoHorizontalScroll,
  expectStatus,
  expectText,
  expectUrl,
  expectVisible,
  fail,
  firstLine,
  newContext,
  screenshot,
  screenshots,
  setArtifacts,
  visit,
  withDeadline,
} from './lib.mjs';
import { SETUP_STEPS } from './setup_steps.mjs';

// ---------------------------------------------------------------------------------------------
// Steps

/** The sign-in page: heading, labelled fields; readable on a phone without sideways scrolling. */
async function signInPage(ctx) {
  const { vault } = ctx.config;
  ctx.context = await newContext(ctx);
  ctx.page = await ctx.context.newPage();
  const page = ctx.page;
  await visit(page, `${vault}/portal/sign-in`);
  await expectText(page.locator('h1'), /^\s*Sign in\s*$/, 'the <h1>');
  await expectVisible(page.getByLabel('Email', { exact: true }), 'the Email field');
  await expectVisible(page.getByLabel('Password', { exact: true }), 'the Password field');
  await screenshot(page, 'portal-sign-in');

  const phone = await newContext(ctx, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  try {
    const small = await phone.newPage();
    await visit(small, `${vault}/portal/sign-in`);
    await expectVisible(small.getByLabel('Email', { exact: true }), 'the Email field on a phone');
    await expectNoHorizontalScroll(small, 390);
    await screenshot(small, 'portal-sign-in-phone');
  } finally {
    await phone.close();
  }
}

/** A wrong password: the page says so, and nobody is signed in. */
async function wrongPassword(ctx) {
  const { page } = ctx;
  allowStatus(ctx, 401); // the form comes back as a 401 page
  await page.getByLabel('Email', { exact: true }).fill(ctx.config.email);
  await page.getByLabel('Password', { exact: true }).fill('not the password at all');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await expectText(page.locator('#error'), 'wrong', 'the error message');
  await expectUrl(page, `${ctx.config.vault}/portal/sign-in`);
}

/** The right password: the overview, showing who is signed in. */
async function signIn(ctx) {
  const { page } = ctx;
  const { vault, email, password } = ctx.config;
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await expectUrl(page, `${vault}/portal`);
  await expectText(page.locator('#operator'), email, 'the signed-in operator');
  await screenshot(page, 'portal-overview');
}

/** A form post with the session's cookie but not its CSRF token is refused, and ends nothing. */
async function csrfLessPostRefused(ctx) {
  const { vault } = ctx.config;
  const response = await ctx.context.request.post(`${vault}/portal/sign-out`, {
    form: { csrf: 'forged' },
    maxRedirects: 0,
    failOnStatusCode: false,
  });
  expectStatus(response, 403, 'POST /portal/sign-out with a forged token');
  expectHeader(response, 'x-tokenvault-error', 'csrf_failed', 'POST /portal/sign-out with a forged token');
  await visit(ctx.page, `${vault}/portal`);
  await expectUrl(ctx.page, `${vault}/portal`);
  await expectText(ctx.page.locator('#operator'), ctx.config.email, 'the operator, still signed in');
}

/** Signing out: back to the sign-in page, and the overview is closed again. Keep this last. */
async function signOut(ctx) {
  const { page } = ctx;
  const { vault } = ctx.config;
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await expectUrl(page, `${vault}/portal/sign-in`);
  await visit(page, `${vault}/portal`);
  await expectUrl(page, `${vault}/portal/sign-in`);
}

export const STEPS = [
  { name: 'sign_in_page', run: signInPage },
  { name: 'wrong_password', run: wrongPassword },
  { name: 'sign_in', run: signIn },
  { name: 'csrf_less_post_refused', run: csrfLessPostRefused },
  // New steps go here: ctx.page is signed in as ctx.config.email.
  ...SETUP_STEPS,
  { name: 'sign_out', run: signOut },
];

// ---------------------------------------------------------------------------------------------
// Runner

function log(...parts) {
  process.stderr.write(`[browser suite] ${parts.join(' ')}\n`);
}

function parseConfig(argv) {
  if (argv.length !== 1) fail('usage: node suite.mjs \'{"vault": ..., "fakes_control": ..., ...}\'');
  let config;
  try {
    config = JSON.parse(argv[0]);
  } catch (error) {
    fail(`the argument is not JSON: ${firstLine(error)}`);
  }
  for (const key of ['vault', 'fakes_control', 'email', 'password', 'artifacts', 'chromium']) {
    if (typeof config[key] !== 'string' || config[key] === '') fail(`the config lacks "${key}"`);
  }
  return config;
}

async function runStep(ctx, step) {
  // What the browser reported between two steps counts against the next one.
  ctx.allowed.length = 0;
  const started = Date.now();
  await withDeadline(Promise.resolve().then(() => step.run(ctx)), STEP_TIMEOUT_MS, `step ${step.name}`);
  const problems = ctx.problems.splice(0);
  if (problems.length > 0) fail(`the browser reported errors:\n  ${problems.join('\n  ')}`);
  log(`ok ${step.name} (${Date.now() - started} ms)`);
}

async function main() {
  let current = 'setup';
  let browser = null;
  const ctx = { config: null, browser: null, context: null, page: null, problems: [], allowed: [] };
  const done = [];
  try {
    ctx.config = parseConfig(process.argv.slice(2));
    setArtifacts(ctx.config.artifacts);
    current = 'launch';
    browser = await chromium.launch({
      executablePath: ctx.config.chromium,
      args: CHROMIUM_ARGS,
      timeout: 60_000,
    });
    ctx.browser = browser;
    log(`Chromium ${browser.version()}`);
    for (const step of STEPS) {
      current = step.name;
      await runStep(ctx, step);
      done.push(step.name);
    }
    console.log(JSON.stringify({ ok: true, steps: done, screenshots: screenshots() }));
  } catch (error) {
    // Playwright's messages carry terminal colours in their call logs.
    const message = (error instanceof StepFailure ? error.message : String(error?.message ?? error))
      .replace(/\u001b\[[0-9;]*m/g, '')
      .trim();
    if (!(error instanceof StepFailure)) log(error?.stack ?? String(error));
    if (ctx.page && !ctx.page.isClosed()) {
      const file = await withDeadline(screenshot(ctx.page, `failed-${current}`), 10_000, 'the failure screenshot')
        .catch(() => null);
      if (file) log(`the page at failure (${ctx.page.url()}): ${ctx.config.artifacts}/${file}`);
    }
    log(`FAILED ${current}: ${message}`);
    console.log(JSON.stringify({ ok: false, failed_step: current, error: message }));
    process.exitCode = 1;
  } finally {
    if (browser) await withDeadline(browser.close(), 10_000, 'closing the browser').catch(() => {});
  }
}

await main();
// Nothing may keep the process alive once the verdict is printed (stdout to a pipe is synchronous).
process.exit(process.exitCode ?? 0);
