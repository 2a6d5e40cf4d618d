// Steps of the browser suite that use the portal, the hosted Connect UI and the wallet the way
// their users do: an operator sets an app up (Dialpad, Zoom and Aircall configured, a key
// minted), an end user connects each provider (popup and redirect modes of /connect.js), sees the
// grants in the wallet and disconnects one (revoked at the fake), and the portal shows the audit.
//
// The "app" is a small HTTP server the suite runs on a loopback port (so Chromium's local
// network rules treat it as a local page, as a developer's would be): its page loads the vault's
// /connect.js, and its origin is the return origin the app registers.

import http from 'node:http';

import {
  allowStatus,
  expectNoHorizontalScroll,
  expectStatus,
  expectText,
  expectVisible,
  fail,
  newContext,
  screenshot,
  visit,
} from './lib.mjs';

/** The fakes' names for the providers, and the scopes their clients are registered with. */
const FAKE = {
  zoom: { provider: 'zoom', scopes: ['user:read:user', 'meeting:read:meeting'] },
  dialpad: { provider: 'dialpad_production' },
  aircall: { provider: 'aircall' },
};

async function json(response, what) {
  if (!response.ok) fail(`${what}: HTTP ${response.status}: ${await response.text()}`);
  return response.status === 204 ? null : response.json();
}

/** The vault's API with the key the operator minted in the portal. */
async function api(ctx, method, path, body) {
  const response = await fetch(`${ctx.config.vault}${path}`, {
    method,
    headers: { authorization: `Bearer ${ctx.apiKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return json(response, `${method} ${path}`);
}

/** The app's page: a button that connects with /connect.js (`?connect=URL&popup=auto|never`);
 *  the result is written to #result. `/done` is the return URL's page. */
function appPage(vault) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Browser CRM</title>
<script src="${vault}/connect.js"></script></head><body>
<h1>Browser CRM</h1><button id="connect" type="button">Connect</button><pre id="result"></pre>
<script>
const params = new URLSearchParams(location.search);
document.getElementById('connect').addEventListener('click', () => {
  TokenVault.connect(params.get('connect'), {
    popup: params.get('popup') || 'auto',
    onResult: (result) => { document.getElementById('result').textContent = JSON.stringify(result); },
  });
});
</script></body></html>`;
}

/** Starts the app's server (once); returns its origin. */
async function appOrigin(ctx) {
  if (ctx.appOrigin) return ctx.appOrigin;
  const server = http.createServer((request, response) => {
    const url = new URL(request.url, 'http://localhost');
    const body = url.pathname === '/done'
      ? '<!doctype html><html lang="en"><head><title>Done</title></head><body><h1 id="done">Back in the app</h1></body></html>'
      : url.pathname === '/' ? appPage(ctx.config.vault) : null;
    response.writeHead(body === null ? 404 : 200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(body ?? 'not found');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  ctx.appOrigin = `http://localhost:${server.address().port}`;
  return ctx.appOrigin;
}

/** The app's page, set to connect with this link. */
async function openApp(ctx, context, connectUrl, popup) {
  const page = await context.newPage();
  const origin = await appOrigin(ctx);
  await visit(page, `${origin}/?connect=${encodeURIComponent(connectUrl)}&popup=${popup}`);
  if ((await page.evaluate(() => typeof window.TokenVault)) !== 'object') {
    fail(`/connect.js did not load: ${ctx.problems.join('; ')}`);
  }
  return page;
}

async function createApp(ctx) {
  const { page } = ctx;
  await page.getByLabel("New app's name").fill('Browser CRM');
  await page.getByRole('button', { name: 'Create app', exact: true }).click();
  await page.waitForURL(/\/portal\/apps\/app_[0-9a-f]+\?done=created$/);
  ctx.appId = new URL(page.url()).pathname.split('/')[3];
  await expectText(page.locator('#notice'), 'App created', 'the notice');
}

async function appSettings(ctx) {
  const { page } = ctx;
  await page.getByLabel('Return origins (one per line)').fill(await appOrigin(ctx));
  await page.getByLabel('Display name (optional)').fill('Browser CRM');
  await page.getByLabel('Accent colour').fill('#0a7d5a');
  await page.getByLabel('Support URL or mailto: (optional)').fill('mailto:help@browser-crm.example');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await expectText(page.locator('#notice'), 'Saved', 'the notice');
  await screenshot(page, 'portal-app-settings');
}

/** Adds one provider from the catalog and registers its client at the fake, as the provider's
 *  developer console would, with the redirect URI the portal shows. */
async function addProvider(ctx, id, clientId) {
  const { page } = ctx;
  await page.getByRole('link', { name: 'Providers', exact: true }).click();
  const form = page.locator(`#add-${id}`);
  await form.getByLabel('Client id').fill(clientId);
  await form.getByLabel('Client secret', { exact: true }).fill(`${clientId}-secret`);
  await form.getByRole('button', { name: /^Add / }).click();
  await expectText(page.locator('#notice'), 'Provider added', 'the notice');
  const redirectUri = (await page.locator(`#redirect-${id}`).textContent()).trim();
  if (!redirectUri.startsWith(`${ctx.config.vault}/connect/callback/pcf_`)) fail(`redirect URI ${redirectUri}`);
  const row = page.locator(`#config-${id}`);
  const scopesText = (await row.locator('td').nth(3).textContent()).trim();
  const install = page.locator(`#install-${id}`);
  const installUri = (await install.count()) > 0 ? (await install.textContent()).trim() : undefined;
  const registration = {
    provider: FAKE[id].provider,
    client_id: clientId,
    client_secret: `${clientId}-secret`,
    redirect_uris: [redirectUri],
    scopes: FAKE[id].scopes ?? (scopesText.includes(' ') || scopesText.includes(':') ? scopesText.split(/\s+/) : [scopesText]),
    install_uri: installUri,
  };
  await json(
    await fetch(`${ctx.config.fakes_control}/_fake/clients`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(registration),
    }),
    `registering ${id} at the fake`,
  );
}

async function configureProviders(ctx) {
  await ctx.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: ctx.config.vault });
  await addProvider(ctx, 'zoom', 'zoom-browser');
  await addProvider(ctx, 'dialpad', 'dialpad-browser');
  await addProvider(ctx, 'aircall', 'aircall-browser');
  const { page } = ctx;
  const copy = page.locator('button[data-copy="redirect-zoom"]');
  await copy.click();
  await expectText(copy, /Copied|Selected/, 'the copy button after a click');
  const copied = await page.evaluate(() => navigator.clipboard.readText()).catch(() => null);
  const shown = (await page.locator('#redirect-zoom').textContent()).trim();
  if (copied !== null && copied !== shown) fail(`copied ${copied}, the page shows ${shown}`);
  await page.locator('#configs').scrollIntoViewIfNeeded();
  await screenshot(page, 'portal-providers');
}

async function mintKey(ctx) {
  const { page } = ctx;
  await page.getByRole('link', { name: 'Keys', exact: true }).click();
  await page.getByLabel('Name', { exact: true }).fill('backend');
  await page.getByLabel('Scopes (space-separated)').fill('*');
  await page.getByRole('button', { name: 'Mint key', exact: true }).click();
  await expectVisible(page.locator('#new-key-secret'), 'the new key');
  ctx.apiKey = (await page.locator('#new-key-secret').textContent()).trim();
  const me = await api(ctx, 'GET', '/v1/app');
  if (me.id !== ctx.appId) fail(`the key belongs to ${me.id}, not ${ctx.appId}`);
  // Shown once: the page again has no secret (and only that page goes into a screenshot).
  await page.getByRole('link', { name: 'Keys', exact: true }).click();
  if ((await page.locator('#new-key-secret').count()) !== 0) fail('the key is shown again');
  await screenshot(page, 'portal-keys');
}

async function session(ctx, endUser, provider) {
  return api(ctx, 'POST', '/v1/connect-sessions', {
    end_user_id: endUser,
    providers: [provider],
    return_url: `${ctx.appOrigin}/done`,
  });
}

/** Zoom in a popup (a desktop window): the result comes back to the app's page. */
async function connectZoomInAPopup(ctx) {
  const created = await session(ctx, 'alice', 'zoom');
  const context = await newContext(ctx, { viewport: { width: 1280, height: 860 } });
  try {
    const app = await openApp(ctx, context, created.connect_url, 'auto');
    const [popup] = await Promise.all([context.waitForEvent('page'), app.locator('#connect').click()]);
    await popup.waitForLoadState();
    await expectText(popup.locator('h1'), 'Connect your Zoom account to Browser CRM', 'the Connect page');
    await expectText(popup.locator('.note').first(), 'Scopes tab', "Zoom's scope note");
    await screenshot(popup, 'connect-page');
    await popup.getByRole('link', { name: 'Continue to Zoom' }).click();
    await expectText(app.locator('#result'), '"status":"succeeded"', "the app's result");
    const result = JSON.parse(await app.locator('#result').textContent());
    if (!result.grant_id?.startsWith('grt_') || result.session_id !== created.id) fail(`result ${JSON.stringify(result)}`);
    ctx.zoomGrant = result.grant_id;
  } finally {
    await context.close();
  }
}

/** Dialpad on a phone: /connect.js goes through the whole page and back to the return URL. */
async function connectDialpadOnAPhone(ctx) {
  const created = await session(ctx, 'alice', 'dialpad');
  const context = await newContext(ctx, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  try {
    const phone = await openApp(ctx, context, created.connect_url, 'auto');
    await phone.locator('#connect').tap();
    await expectText(phone.locator('h1'), 'Connect your Dialpad account to Browser CRM', 'the Connect page');
    await expectNoHorizontalScroll(phone, 390);
    await expectVisible(phone.locator('.scope-name').first(), "Dialpad's scopes");
    await screenshot(phone, 'connect-page-phone');
    await phone.getByRole('link', { name: 'Continue to Dialpad' }).tap();
    await phone.waitForURL(`${ctx.appOrigin}/done?**`);
    const back = new URL(phone.url());
    if (back.searchParams.get('status') !== 'succeeded') fail(`back at ${phone.url()}`);
    ctx.dialpadGrant = back.searchParams.get('grant_id');
  } finally {
    await context.close();
  }
}

/** Aircall with the keyboard only, in redirect mode on a desktop. */
async function connectAircallWithTheKeyboard(ctx) {
  const created = await session(ctx, 'alice', 'aircall');
  const context = await newContext(ctx, { viewport: { width: 1280, height: 860 } });
  try {
    const page = await openApp(ctx, context, created.connect_url, 'never');
    await page.locator('#connect').focus();
    await page.keyboard.press('Enter');
    await expectText(page.locator('h1'), 'Aircall', 'the Connect page');
    // Tab to the Continue button and press it.
    for (let i = 0; i < 10; i++) {
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => document.activeElement?.id ?? '');
      if (focused === 'continue-aircall') break;
    }
    const focused = await page.evaluate(() => document.activeElement?.id ?? '');
    if (focused !== 'continue-aircall') fail(`Tab never reached the Continue button (at #${focused})`);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${ctx.appOrigin}/done?**`);
    if (new URL(page.url()).searchParams.get('status') !== 'succeeded') fail(`back at ${page.url()}`);
  } finally {
    await context.close();
  }
}

/** The wallet: Alice sees her three connections and disconnects Zoom; Zoom revokes the token. */
async function wallet(ctx) {
  const token = await api(ctx, 'POST', `/v1/grants/${ctx.zoomGrant}/token`);
  const created = await api(ctx, 'POST', '/v1/wallet-sessions', { end_user_id: 'alice' });
  const context = await newContext(ctx, { viewport: { width: 1024, height: 900 } });
  try {
    const page = await context.newPage();
    await visit(page, created.wallet_url);
    if (new URL(page.url()).pathname !== '/wallet') fail(`the wallet link left us at ${page.url()}`);
    await expectText(page.locator('h1'), 'Your connections with Browser CRM', 'the wallet');
    for (const name of ['Zoom', 'Dialpad', 'Aircall']) {
      await expectVisible(page.getByRole('heading', { name, exact: true }), `the ${name} connection`);
    }
    if ((await page.content()).includes(token.access_token)) fail('the wallet shows a token');
    await screenshot(page, 'wallet');
    await page.getByRole('button', { name: 'Disconnect Zoom' }).click();
    await expectText(page.locator('#notice'), 'Disconnected', 'the notice');
    if ((await page.getByRole('heading', { name: 'Zoom', exact: true }).count()) !== 0) fail('Zoom is still listed');
    const active = await json(
      await fetch(`${ctx.config.fakes_control}/_fake/tokens/active`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ provider: 'zoom', token: token.access_token, kind: 'access' }),
      }),
      'asking the fake',
    );
    if (active.active !== false) fail('Zoom still accepts the token after the disconnect');
    const grant = await api(ctx, 'GET', `/v1/grants/${ctx.zoomGrant}`);
    if (grant.status !== 'revoked') fail(`the grant is ${grant.status}`);
    // Opened once: the link does not work again.
    allowStatus(ctx, 410);
    const again = await context.newPage();
    const response = await again.goto(created.wallet_url);
    expectStatus(response, 410, 'the wallet link a second time');
  } finally {
    await context.close();
  }
}

/** The operator watches it work: the grants, the audit rows (and their CSV export), the charts. */
async function portalShowsTheActivity(ctx) {
  const { page } = ctx;
  const { vault } = ctx.config;
  await visit(page, `${vault}/portal/apps/${ctx.appId}/grants`);
  for (const grant of [ctx.zoomGrant, ctx.dialpadGrant]) {
    await expectVisible(page.locator(`a[href$="/grants/${grant}"]`), `grant ${grant} in the list`);
  }
  await screenshot(page, 'portal-grants');
  await visit(page, `${vault}/portal/apps/${ctx.appId}/grants/${ctx.zoomGrant}`);
  await expectText(page.locator('main'), 'revoked', "the Zoom grant's status");
  await visit(page, `${vault}/portal/apps/${ctx.appId}/audit`);
  await expectText(page.locator('main'), 'grant.revoked', 'the disconnect in the audit log');
  await expectText(page.locator('main'), 'grant.connected', 'the connects in the audit log');
  await screenshot(page, 'portal-audit');
  const csv = await ctx.context.request.get(`${vault}/portal/apps/${ctx.appId}/audit/export?format=csv`);
  expectStatus(csv, 200, 'the CSV export');
  const text = await csv.text();
  if (!text.startsWith('id,at,action,outcome') || !text.includes('grant.revoked')) fail(`the CSV export: ${text.slice(0, 200)}`);
  await visit(page, `${vault}/portal`);
  await expectVisible(page.locator('svg').first(), 'the overview charts');
  await screenshot(page, 'portal-overview-charts');
}

/** A URL naming another app's object under this app (or the reverse) is not found. */
async function crossAppUrlsAreRefused(ctx) {
  const { vault, other_app_id: otherApp, other_grant_id: otherGrant } = ctx.config;
  allowStatus(ctx, 404);
  for (const path of [
    `/portal/apps/${ctx.appId}/grants/${otherGrant}`,
    `/portal/apps/${otherApp}/grants/${ctx.zoomGrant}`,
    `/portal/apps/app_00000000000000000000000000000000`,
  ]) {
    const response = await ctx.page.goto(`${vault}${path}`);
    expectStatus(response, 404, `GET ${path}`);
  }
  // A disconnect form for another app's grant, with this session's token, changes nothing.
  await visit(ctx.page, `${vault}/portal`);
  const csrf = await ctx.page.locator('input[name="csrf"]').first().inputValue();
  const forged = await ctx.context.request.post(`${vault}/portal/apps/${ctx.appId}/grants/${otherGrant}/disconnect`, {
    form: { csrf },
    maxRedirects: 0,
    failOnStatusCode: false,
  });
  expectStatus(forged, 404, "disconnecting another app's grant");
}

export const SETUP_STEPS = [
  { name: 'create_app', run: createApp },
  { name: 'app_settings', run: appSettings },
  { name: 'configure_providers', run: configureProviders },
  { name: 'mint_key', run: mintKey },
  { name: 'connect_zoom_in_a_popup', run: connectZoomInAPopup },
  { name: 'connect_dialpad_on_a_phone', run: connectDialpadOnAPhone },
  { name: 'connect_aircall_with_the_keyboard', run: connectAircallWithTheKeyboard },
  { name: 'wallet', run: wallet },
  { name: 'portal_shows_the_activity', run: portalShowsTheActivity },
  { name: 'cross_app_urls_are_refused', run: crossAppUrlsAreRefused },
];
