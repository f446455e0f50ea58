// Hedgerow web page: what script adds to pages that work without it.
// - Live updates: a page whose <main> names a live stream (data-live) listens to it and, when a
//   change to what it shows arrives, fetches itself again and swaps in the new <main>.
// - A release selector shows its choice without pressing "Show".
// - Write forms load the signing module, sign.js, when a visitor starts writing.
// No inline script anywhere (the Content-Security-Policy forbids it); this file is all of it.
(function () {
  'use strict';

  function autosubmit() {
    var selects = document.querySelectorAll('select[data-autosubmit]');
    Array.prototype.forEach.call(selects, function (select) {
      select.addEventListener('change', function () {
        if (select.form) { select.form.submit(); }
      });
    });
  }

  function live() {
    var main = document.getElementById('main');
    var url = main && main.getAttribute('data-live');
    if (!url || !window.EventSource || !window.fetch || !window.DOMParser) { return; }
    var status = document.getElementById('live-status');
    var timer = null;
    var running = false;
    var again = false;
    var updates = 0;

    function say(attr) {
      if (!status) { return; }
      status.hidden = false;
      status.textContent = status.getAttribute(attr) || '';
    }

    function refresh() {
      timer = null;
      if (running) { again = true; return; }
      running = true;
      fetch(window.location.href, { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
        .then(function (response) {
          if (!response.ok) { throw new Error('status ' + response.status); }
          return response.text();
        })
        .then(function (text) {
          var fresh = new DOMParser().parseFromString(text, 'text/html').getElementById('main');
          if (fresh) {
            // A write form keeps its own node (what is typed in it, its status line, a
            // submission under way), put back in place of its fresh copy.
            var kept = Array.prototype.slice.call(main.querySelectorAll('form[id]'));
            var nodes = Array.prototype.map.call(fresh.childNodes, function (node) {
              return document.importNode(node, true);
            });
            main.replaceChildren.apply(main, nodes);
            kept.forEach(function (form) {
              var copy = document.getElementById(form.id);
              if (copy && copy.tagName === 'FORM') { copy.replaceWith(form); }
            });
            updates += 1;
            document.documentElement.setAttribute('data-live-updates', String(updates));
            say('data-refreshed-text');
          }
        })
        .catch(function () { /* the next change tries again */ })
        .then(function () {
          running = false;
          if (again) { again = false; schedule(); }
        });
    }

    function schedule() {
      if (timer === null) { timer = window.setTimeout(refresh, 150); }
    }

    var source = new EventSource(url);
    source.addEventListener('open', function () {
      document.documentElement.setAttribute('data-live', 'open');
      say('data-live-text');
    });
    source.addEventListener('change', schedule);
  }

  // Write forms sign in the browser with sign.js and its libraries (about 150 KB): loaded only
  // once a visitor starts writing, so reading a page never costs them. A form sent before the
  // module is there waits for it. Without script the forms post to a page saying signing needs it.
  function signing() {
    var loading = null;
    function load() {
      if (!loading) {
        loading = import('/assets/sign.js').catch(function () { loading = null; });
      }
      return loading;
    }
    function writeForm(target) {
      return target && target.closest ? target.closest('form[data-write]') : null;
    }
    document.addEventListener('focusin', function (event) {
      if (writeForm(event.target)) { load(); }
    });
    document.addEventListener('submit', function (event) {
      var form = writeForm(event.target);
      if (!form || document.documentElement.getAttribute('data-sign') === 'ready') { return; }
      event.preventDefault();
      load().then(function () {
        if (document.documentElement.getAttribute('data-sign') === 'ready') { form.requestSubmit(); }
      });
    }, true);
  }

  function start() { autosubmit(); live(); signing(); }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
