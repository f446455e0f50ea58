// Browser tests of the node's web page, run by tests/tests/web_pages.rs (which starts the node,
// fills its commons and passes everything here in environment variables).
//
// Headless Chromium from Debian, driven by playwright-core (CDP; no browser download), with
// axe-core for the accessibility check. Prints one JSON object of results on standard output;
// any failed check throws, which exits non-zero with the reason.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
const env = (name) => {
  const value = process.env[name];
  if (!value) { throw new Error(`${name} is not set`); }
  return value;
};
const BASE = env('WEB_URL');
const READ_ONLY = env('READ_ONLY_URL');
const BIN = env('HEDGEROW_BIN');
const HOME = env('NODE_HOME');
const COMMONS = env('COMMONS');
const DESIGN = env('DESIGN');
const EVENT = env('EVENT');
const HOSTILE = env('HOSTILE_DESIGN');
const SHOTS = env('SCREENSHOT_DIR');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const AXE = require.resolve('axe-core/axe.min.js');

const PHONE = { viewport: { width: 360, height: 740 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
const DESKTOP = { viewport: { width: 1280, height: 900 } };
const LIMIT = 100 * 1024;

function check(ok, what) { if (!ok) { throw new Error(what); } }
function cli(...args) {
  return execFileSync(BIN, ['--home', HOME, ...args], { encoding: 'utf8', env: { ...process.env, HEDGEROW_HOME: '' } });
}

mkdirSync(SHOTS, { recursive: true });
const results = { weights: {}, axe: {}, screenshots: [], live: {}, hostile: {}, no_script: {}, read_only: {} };
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true });
try {
  const pages = {
    commons: '/',
    designs: `/c/${COMMONS}`,
    design: `/c/${COMMONS}/d/${DESIGN}`,
    history: `/c/${COMMONS}/d/${DESIGN}/history`,
    event: `/c/${COMMONS}/e/${EVENT}`,
    people: `/c/${COMMONS}/people`,
  };

  // Page weights: the page and everything it loads but images, as the browser received them.
  {
    const context = await browser.newContext(PHONE);
    const page = await context.newPage();
    for (const [name, url] of Object.entries(pages)) {
      let bytes = 0;
      const counted = [];
      const listener = async (response) => {
        if (response.request().resourceType() === 'image') { return; }
        counted.push(response.body().then((b) => { bytes += b.length; }).catch(() => {}));
      };
      page.on('response', listener);
      await page.goto(BASE + url, { waitUntil: 'load' });
      await Promise.all(counted);
      page.off('response', listener);
      results.weights[name] = bytes;
      check(bytes < LIMIT, `${name} weighs ${bytes} bytes, over ${LIMIT}`);
      // Usable at 360 px: nothing wider than the screen.
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      check(wide <= 360, `${name} is ${wide} px wide at 360`);
    }
    await context.close();
  }

  // Browse as a visitor would: the commons, its designs, a search, a design.
  for (const [label, options] of [['phone', PHONE], ['desktop', DESKTOP]]) {
    const context = await browser.newContext(options);
    const page = await context.newPage();
    await page.goto(BASE + '/');
    await page.screenshot({ path: path.join(SHOTS, `${label}-commons.png`), fullPage: true });
    await page.getByRole('link', { name: 'Atelier' }).first().click();
    await page.waitForURL(`**/c/${COMMONS}`);
    await page.screenshot({ path: path.join(SHOTS, `${label}-designs.png`), fullPage: true });
    await page.getByRole('searchbox').fill('chevron');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/q=chevron/);
    const found = await page.locator('ul.items li').allTextContents();
    check(found.length === 1 && found[0].includes('Roller crimper'), `search found ${JSON.stringify(found)}`);
    await page.getByRole('link', { name: 'Roller crimper' }).first().click();
    await page.waitForURL(`**/d/${DESIGN}`);
    check(await page.locator('table').count() === 1, 'the design page has its BOM table');
    check(await page.locator('ol.steps > li').count() === 2, 'the design page numbers its 2 steps');
    await page.screenshot({ path: path.join(SHOTS, `${label}-design.png`), fullPage: true });
    await page.goto(BASE + pages.event);
    await page.screenshot({ path: path.join(SHOTS, `${label}-event.png`), fullPage: true });
    results.screenshots.push(`${label}-commons.png`, `${label}-designs.png`, `${label}-design.png`, `${label}-event.png`);
    await context.close();
  }

  // Live: pages open on the event and the design update when a CLI user writes.
  {
    const context = await browser.newContext(PHONE);
    const eventPage = await context.newPage();
    const designPage = await context.newPage();
    await eventPage.goto(BASE + pages.event);
    await designPage.goto(BASE + pages.design);
    await eventPage.waitForSelector('html[data-live="open"]', { timeout: 15000 });
    await designPage.waitForSelector('html[data-live="open"]', { timeout: 15000 });
    cli('note', 'add', '--on', EVENT, '--text', 'Written on the CLI while the page was open');
    await eventPage.getByText('Written on the CLI while the page was open').waitFor({ timeout: 15000 });
    cli('design', 'edit', DESIGN, '--set', 'summary=Crimps rye flat, edited live');
    await designPage.getByText('Crimps rye flat, edited live').waitFor({ timeout: 15000 });
    results.live.event = await eventPage.evaluate(() => document.documentElement.getAttribute('data-live-updates'));
    results.live.design = await designPage.evaluate(() => document.documentElement.getAttribute('data-live-updates'));
    await context.close();
  }

  // Hostile text renders inert: no dialog, no script but the node's own, title untouched.
  {
    const context = await browser.newContext(DESKTOP);
    const page = await context.newPage();
    let dialogs = 0;
    page.on('dialog', (dialog) => { dialogs += 1; dialog.dismiss().catch(() => {}); });
    const url = `/c/${COMMONS}/d/${HOSTILE}`;
    await page.goto(BASE + url, { waitUntil: 'load' });
    await page.waitForTimeout(300);
    const scripts = await page.evaluate(() => Array.from(document.scripts).map((s) => s.getAttribute('src')));
    const title = await page.title();
    const shownText = await page.locator('main').innerText();
    results.hostile = { dialogs, scripts, title, shows_text: shownText.includes('<script>') };
    check(dialogs === 0, `hostile text opened ${dialogs} dialogs`);
    check(scripts.length === 1 && scripts[0] === '/assets/app.js', `scripts on the page: ${JSON.stringify(scripts)}`);
    check(!title.includes('pwned'), `title changed to ${title}`);
    check(results.hostile.shows_text, 'the hostile text is shown as text');
    await page.screenshot({ path: path.join(SHOTS, 'desktop-hostile.png') });
    results.screenshots.push('desktop-hostile.png');
    await context.close();
  }

  // With JavaScript off the pages read the same.
  {
    const context = await browser.newContext({ ...PHONE, javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(BASE + pages.design);
    results.no_script.steps = await page.locator('ol.steps > li').count();
    check(results.no_script.steps === 2, 'steps shown without JavaScript');
    await context.close();
  }

  // Accessibility (axe-core, WCAG 2 A and AA) on each page, at phone size. axe is injected
  // past the page's CSP (the page itself allows no inline script).
  {
    const context = await browser.newContext({ ...PHONE, bypassCSP: true });
    const page = await context.newPage();
    for (const [name, url] of Object.entries(pages)) {
      await page.goto(BASE + url);
      await page.addScriptTag({ path: AXE });
      const outcome = await page.evaluate(async () => {
        const r = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa'] } });
        return r.violations.map((v) => ({ id: v.id, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
      });
      results.axe[name] = outcome;
      check(outcome.length === 0, `axe on ${name}: ${JSON.stringify(outcome)}`);
    }
    await context.close();
  }

  // A read-only node refuses a write sent from its own page.
  {
    const context = await browser.newContext(DESKTOP);
    const page = await context.newPage();
    await page.goto(READ_ONLY + '/');
    results.read_only.status = await page.evaluate(async () => {
      const r = await fetch('/', { method: 'POST', body: 'x' });
      return r.status;
    });
    check(results.read_only.status === 403, `read-only node answered ${results.read_only.status}`);
    await context.close();
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(results) + '\n');
