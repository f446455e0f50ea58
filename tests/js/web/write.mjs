// Two browsers and a CLI user write notes on one event at once, run by tests/tests/web_pages.rs.
//
// Each browser is its own playwright context (its own localStorage, so its own key): it joins
// as a guest with its own invitation code on the enrolment page, keeps the event page open
// (live), and writes a note from the form on that page. Meanwhile the CLI adds a note and
// edits it, and browser A rewrites its own note from the note's page. Every open event page
// must show every note, in its latest text, without a reload. Prints one JSON object: the
// browsers' keys (hex) and what was seen; any failed check throws.
import { chromium } from 'playwright-core';
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';

const run = promisify(execFile);
const env = (name) => {
  const value = process.env[name];
  if (!value) { throw new Error(`${name} is not set`); }
  return value;
};
const BASE = env('WEB_URL');
const BIN = env('HEDGEROW_BIN');
const HOME = env('NODE_HOME');
const COMMONS = env('COMMONS');
const EVENT = env('EVENT');
const CODES = [env('CODE_A'), env('CODE_B')];
const SHOTS = env('SCREENSHOT_DIR');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = { timeout: 30000 };

const PHONE = { viewport: { width: 360, height: 740 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
const DESKTOP = { viewport: { width: 1280, height: 900 } };
const EVENT_URL = `${BASE}/c/${COMMONS}/e/${EVENT}`;

function check(ok, what) { if (!ok) { throw new Error(what); } }
async function cli(...args) {
  const { stdout } = await run(BIN, ['--home', HOME, ...args], { encoding: 'utf8', env: { ...process.env, HEDGEROW_HOME: '' } });
  return stdout;
}

// Waits until a write form's status line says it is saved; throws with the error it shows.
async function saved(page, formId) {
  const status = page.locator(`#${formId} [data-status]`);
  try {
    await page.waitForFunction((id) => {
      const out = document.querySelector(`#${id} [data-status]`);
      return out && (out.classList.contains('error') || out.textContent === out.closest('form').dataset.done);
    }, formId, WAIT);
  } catch (e) {
    const shown = await status.textContent().catch(() => '(no status line)');
    throw new Error(`${formId} on ${page.url()} not saved: status ${JSON.stringify(shown)}: ${e.message}`);
  }
  const failed = await status.evaluate((out) => out.classList.contains('error'));
  check(!failed, `${formId}: ${await status.textContent()}`);
}

mkdirSync(SHOTS, { recursive: true });
const results = { keys: [], notes: {}, no_reload: [], updates: [] };
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true });
try {
  const people = [];
  for (const [i, options] of [PHONE, DESKTOP].entries()) {
    const context = await browser.newContext(options);
    // The event page first, live; the way to write goes through its own link to enrolment.
    const eventPage = await context.newPage();
    await eventPage.goto(EVENT_URL);
    await eventPage.waitForSelector('html[data-live="open"]', WAIT);
    // Reading loads no signing code.
    check(await eventPage.evaluate(() => document.documentElement.getAttribute('data-sign')) === null, 'sign.js loaded by reading');
    const enrol = await context.newPage();
    const href = await eventPage.locator('#write-note a[href^="/write/enrol"]').getAttribute('href');
    await enrol.goto(BASE + href);
    await enrol.waitForSelector('html[data-sign="ready"]', WAIT);
    await enrol.locator('#guest-code').fill(CODES[i]);
    await enrol.locator('#write-enrol-guest button[type=submit]').click();
    await saved(enrol, 'write-enrol-guest');
    const key = (await enrol.locator('[data-browser-key]').textContent()).trim();
    check(/^[0-9a-f]{64}$/.test(key), `browser ${i} shows key ${key}`);
    results.keys.push(key);
    // The enrolment page links back to the event.
    check(await enrol.locator(`a[href="/c/${COMMONS}/e/${EVENT}"]`).count() === 1, 'a link back to the event');
    await enrol.close();
    await eventPage.evaluate(() => { window.hedgerowNoReload = true; });
    people.push({ context, eventPage });
  }
  check(results.keys[0] !== results.keys[1], 'each browser has its own key');

  // All three at once: two browsers press "Sign and save" while the CLI adds a note.
  const texts = ['Note from browser A', 'Note from browser B'];
  const browsersWrite = people.map(async ({ eventPage }, i) => {
    await eventPage.locator('#note-body').fill(texts[i]);
    await eventPage.locator('#write-note button[type=submit]').click();
    await saved(eventPage, 'write-note');
  });
  const cliWrites = (async () => {
    const added = JSON.parse(await cli('note', 'add', '--on', EVENT, '--text', 'CLI note', '--json'));
    await cli('note', 'edit', added.id, '--text', 'CLI note, edited on the CLI');
    return added.id;
  })();
  const [cliNote] = await Promise.all([cliWrites, ...browsersWrite]);
  results.notes.cli = cliNote;

  // Browser A rewrites its own note from the note's page (a link on the event page).
  {
    const { context, eventPage } = people[0];
    const link = eventPage.locator('article.note', { hasText: texts[0] }).locator('a[href*="/n/"]');
    await link.first().waitFor(WAIT);
    const notePage = await context.newPage();
    await notePage.goto(BASE + await link.first().getAttribute('href'));
    await notePage.locator('#note-edit-body').fill('Note from browser A, edited in the browser');
    await notePage.locator('#write-note-edit button[type=submit]').click();
    await saved(notePage, 'write-note-edit');
    await notePage.close();
  }

  const final = ['Note from browser A, edited in the browser', 'Note from browser B', 'CLI note, edited on the CLI'];
  for (const [i, { eventPage }] of people.entries()) {
    for (const text of final) {
      await eventPage.locator('#notes article.note', { hasText: text }).first().waitFor(WAIT);
    }
    results.no_reload.push(await eventPage.evaluate(() => window.hedgerowNoReload === true));
    results.updates.push(Number(await eventPage.evaluate(() => document.documentElement.getAttribute('data-live-updates'))));
    const shown = await eventPage.locator('#notes article.note').count();
    check(shown === 3, `browser ${i} shows ${shown} notes`);
    // What was typed and sent was cleared; the form is still there after the live updates.
    check(await eventPage.locator('#note-body').inputValue() === '', 'the note form was reset');
  }
  check(results.no_reload.every(Boolean), 'a page reloaded');
  await people[0].eventPage.screenshot({ path: path.join(SHOTS, 'phone-event-write.png'), fullPage: true });
  results.screenshot = 'phone-event-write.png';
  for (const { context } of people) { await context.close(); }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(results) + '\n');
