// The browser's own signing key and the prepare / sign / commit round trip (`serve --web`).
//
// The key is 32 random bytes from crypto.getRandomValues (allowed over plain HTTP), kept in this
// origin's localStorage; it never leaves the browser. For every write the node builds the change
// and sends, for each record to sign, the exact bytes, the BLAKE3 key-derivation context and the
// digest. This page recomputes the digest from those bytes, checks that its own public key is the
// author inside them, and only then signs. Loaded as a module from the node itself: no inline
// script (the page's CSP allows scripts from 'self' only).

import * as ed from './vendor/noble-ed25519/index.js';
import { sha512 } from './vendor/noble-hashes/sha2.js';
import { blake3 } from './vendor/noble-hashes/blake3.js';

ed.hashes.sha512 = sha512;

const STORE = 'hedgerow-key-v1';
// Header the write endpoints require: a cross-site form cannot send it.
const HEADER = 'X-Hedgerow-Write';
// Offsets of the author key in what is signed (versioned postcard, see README Formats).
const CHANGE_AUTHOR = 68;
const GENESIS_CREATOR = 36;

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function unhex(text) {
  if (typeof text !== 'string' || text.length % 2 !== 0 || /[^0-9a-f]/i.test(text)) {
    throw new Error('not hex');
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function storage() {
  try {
    return window.localStorage;
  } catch (e) {
    return null;
  }
}

// This browser's secret key, made on first use.
function secretKey() {
  const store = storage();
  let text = store && store.getItem(STORE);
  if (!text || text.length !== 64) {
    const bytes = new Uint8Array(32);
    crypto.getRandomValues(bytes);
    text = hex(bytes);
    if (store) store.setItem(STORE, text);
  }
  return unhex(text);
}

/** This browser's public key, hex. */
export function publicKeyHex() {
  return hex(ed.getPublicKey(secretKey()));
}

function same(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Checks one item the node asks to sign; returns the digest to sign, or throws. */
export function checkItem(item, publicKey) {
  const preimage = unhex(item.preimage);
  const digest = blake3(preimage, { context: new TextEncoder().encode(item.domain) });
  if (hex(digest) !== item.digest.toLowerCase()) {
    throw new Error('the node asked to sign a digest that is not the hash of the bytes it showed');
  }
  const at = item.part === 'genesis' ? GENESIS_CREATOR : CHANGE_AUTHOR;
  if (!same(preimage.slice(at, at + 32), publicKey)) {
    throw new Error('the bytes to sign name another author than this browser');
  }
  return digest;
}

/** Signs every item of a prepared change with `secret`; returns {part: signature hex}. */
export function signItems(items, secret) {
  const publicKey = ed.getPublicKey(secret);
  const out = {};
  for (const item of items) {
    out[item.part] = hex(ed.sign(checkItem(item, publicKey), secret));
  }
  return out;
}

async function post(path, body) {
  const response = await fetch(path, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', [HEADER]: '1' },
    body: JSON.stringify(body),
  });
  let reply = null;
  try {
    reply = await response.json();
  } catch (e) {
    reply = null;
  }
  if (!response.ok) {
    const error = new Error((reply && reply.error) || response.statusText || 'refused');
    error.status = response.status;
    throw error;
  }
  return reply;
}

/** Prepares `write`, signs it with this browser's key and commits it; re-prepares when the
 *  document moved in between (409). Resolves to the node's reply. */
export async function submit(write) {
  const secret = secretKey();
  const key = publicKeyHex();
  for (let attempt = 0; ; attempt++) {
    const prepared = await post('/api/write/prepare', { key, write });
    const signatures = signItems(prepared.sign, secret);
    try {
      return await post('/api/write/commit', { key, token: prepared.token, signatures });
    } catch (e) {
      if (e.status === 409 && attempt < 3) continue;
      throw e;
    }
  }
}

/** Enrols this browser as a device of the person whose node made `code` (`device add`). */
export function enrolDevice(code) {
  return post('/api/enrol/device', { key: publicKeyHex(), code });
}

/** Redeems an invitation code with this browser's key (a guest of an event). */
export function enrolGuest(code) {
  return submit({ write: 'redeem', code });
}

function status(form, text, failed) {
  const out = form.querySelector('[data-status]');
  if (out) {
    out.textContent = text;
    out.classList.toggle('error', !!failed);
  }
}

// What a form with data-write sends, from its fields.
function writeOf(form) {
  const data = new FormData(form);
  const kind = form.dataset.write;
  const field = (name) => (data.get(name) || '').toString();
  switch (kind) {
    case 'note':
      return { write: 'note_add', target: field('target'), kind: field('kind') || null, body: field('body') };
    case 'built':
      return {
        write: 'edit',
        doc: field('doc'),
        edits: [{ op: 'add_built', place: field('place') || undefined, note: field('note') || undefined }],
      };
    case 'field':
      return { write: 'edit', doc: field('doc'), edits: [{ op: 'replace_text', field: field('field'), text: field('value') }] };
    case 'note-edit':
      return { write: 'edit', doc: field('doc'), edits: [{ op: 'replace_text', field: 'body', text: field('value') }] };
    case 'set':
      return { write: 'edit', doc: field('doc'), edits: [{ op: 'set', field: field('field'), value: field('value') }] };
    case 'step':
      return { write: 'edit', doc: field('doc'), edits: [{ op: 'edit_step', step: Number(field('step')), text: field('text') }] };
    case 'add-step':
      return { write: 'edit', doc: field('doc'), edits: [{ op: 'add_step', text: field('text') }] };
    default:
      return null;
  }
}

async function onSubmit(event) {
  const form = event.target;
  event.preventDefault();
  const button = form.querySelector('button[type=submit]');
  if (button) button.disabled = true;
  status(form, form.dataset.busy || '…', false);
  try {
    let reply;
    if (form.dataset.write === 'enrol-device') {
      reply = await enrolDevice(new FormData(form).get('code').toString());
    } else if (form.dataset.write === 'enrol-guest') {
      reply = await enrolGuest(new FormData(form).get('code').toString());
    } else {
      reply = await submit(writeOf(form));
    }
    status(form, form.dataset.done || 'Saved', false);
    form.dispatchEvent(new CustomEvent('hedgerow:written', { detail: reply, bubbles: true }));
    if (form.dataset.reset !== undefined) form.reset();
    if (form.dataset.reload !== undefined) window.location.reload();
  } catch (e) {
    status(form, e.message, true);
  } finally {
    if (button) button.disabled = false;
  }
}

// One listener on the document: a page whose <main> is swapped by a live update keeps working.
// Without JavaScript the same forms post to /write/needs-js, which says signing needs it.
function enhance() {
  document.addEventListener('submit', (event) => {
    if (event.target instanceof HTMLFormElement && event.target.matches('form[data-write]')) {
      onSubmit(event);
    }
  });
  for (const out of document.querySelectorAll('[data-browser-key]')) out.textContent = publicKeyHex();
  // Forms now sign here (before this, a submit goes to the page saying signing needs script).
  document.documentElement.setAttribute('data-sign', 'ready');
}

if (typeof document !== 'undefined') {
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', enhance);
  else enhance();
}
