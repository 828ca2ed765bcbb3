/**
 * The inbox's stylesheet and its one script, served as they are written here (no build step, and
 * nothing to copy next to the compiled server). The script only improves the page: without it the
 * forms post and the page reloads itself until the status is final.
 *
 * The script: a decision is sent as JSON (with the session's CSRF token in a header), then the
 * status is read every second until it is final, and written into the page's live region.
 */

export const INBOX_ICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#0b5cad"/><path d="M4 8.5l2.5 2.5L12 5.5" stroke="#fff" stroke-width="2" fill="none"/></svg>';

export const INBOX_CSS = `
:root { --fg: #1b1f24; --muted: #57606a; --bg: #fff; --card: #f6f8fa; --line: #d0d7de; --accent: #0b5cad; --danger: #b3261e; --ok: #1a7f37; --focus: #ffbf47; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 52rem; margin: 0 auto; padding: 1rem; }
main:focus { outline: none; }
h1 { font-size: 1.6rem; margin: .5rem 0 1rem; line-height: 1.25; overflow-wrap: anywhere; }
h2 { font-size: 1.2rem; margin: 1.25rem 0 .5rem; overflow-wrap: anywhere; }
h3 { font-size: 1rem; margin: 1rem 0 .25rem; }
a { color: var(--accent); }
code { font-size: .9em; overflow-wrap: anywhere; }
.skip { position: absolute; left: -999px; top: 0; background: var(--fg); color: #fff; padding: .5rem 1rem; z-index: 10; }
.skip:focus { left: 0; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.top { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; justify-content: space-between; padding: .75rem 1rem; border-bottom: 1px solid var(--line); background: var(--card); }
.brand { font-weight: 700; text-decoration: none; color: var(--fg); }
.signout { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: 0; }
.who { color: var(--muted); overflow-wrap: anywhere; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1rem; margin: 0 0 1rem; }
ol.inbox { list-style: none; padding: 0; margin: 0; }
ol.inbox h2 { margin-top: 0; }
.facts { display: grid; grid-template-columns: 1fr; gap: .25rem; margin: .5rem 0; }
.facts div { display: grid; grid-template-columns: 8.5rem 1fr; gap: .5rem; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
ul.ops, ul.reasons, ul.approvals { padding-left: 1.25rem; margin: .25rem 0; }
ul.ops li { margin: .25rem 0; overflow-wrap: anywhere; }
ul.ops .meta { display: block; color: var(--muted); font-size: .9rem; }
.field { margin: 0 0 1rem; }
label { display: block; font-weight: 600; margin-bottom: .25rem; }
.hint { font-weight: 400; color: var(--muted); }
input[type=text], input[type=password], textarea { width: 100%; font: inherit; padding: .6rem; border: 1px solid var(--muted); border-radius: 6px; background: #fff; color: var(--fg); }
button, .button { display: inline-block; font: inherit; font-weight: 600; min-height: 44px; padding: .6rem 1.2rem; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; text-decoration: none; }
button.secondary { background: #fff; color: var(--accent); min-height: 36px; padding: .3rem .8rem; }
button.danger { background: #fff; color: var(--danger); border-color: var(--danger); }
button[disabled] { opacity: .6; cursor: progress; }
a:focus-visible, button:focus-visible, input:focus-visible, textarea:focus-visible, .button:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; box-shadow: 0 0 0 5px var(--fg); }
.actions { display: flex; flex-wrap: wrap; gap: .75rem; }
.error { color: var(--danger); font-weight: 600; }
[aria-invalid=true] { border-color: var(--danger); border-width: 2px; }
.note { border-left: 4px solid var(--muted); padding: .5rem .75rem; background: var(--card); }
.status { font-weight: 600; padding: .5rem .75rem; border-radius: 6px; background: var(--card); border: 1px solid var(--line); overflow-wrap: anywhere; }
.status-completed { color: var(--ok); border-color: var(--ok); }
.status-rejected, .status-failed, .status-invalid, .status-rolled_back { color: var(--danger); border-color: var(--danger); }
@media (max-width: 30rem) {
  .facts div { grid-template-columns: 1fr; gap: 0; }
  .actions button { flex: 1 1 100%; }
  h1 { font-size: 1.35rem; }
}
@media (prefers-reduced-motion: no-preference) { button { transition: opacity .15s; } }
`;

export const INBOX_JS = `'use strict';
(function () {
  var statusEl = document.getElementById('status');
  if (!statusEl) return;
  var id = statusEl.getAttribute('data-amendment');
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute('content') : '';
  var form = document.getElementById('decision');
  var errorEl = document.getElementById('comment-error');
  var api = '/inbox/api/amendments/' + encodeURIComponent(id);
  var timer = null;

  function showError(message, field) {
    if (!errorEl) return;
    errorEl.textContent = message;
    errorEl.hidden = false;
    var comment = document.getElementById('comment');
    if (comment) {
      if (field === 'comment') { comment.setAttribute('aria-invalid', 'true'); comment.focus(); }
      else comment.removeAttribute('aria-invalid');
    }
  }

  function showApprovals(list) {
    var ul = document.getElementById('approvals');
    if (!ul || !list) return;
    while (ul.firstChild) ul.removeChild(ul.firstChild);
    if (list.length === 0) { var none = document.createElement('li'); none.textContent = 'none yet'; ul.appendChild(none); return; }
    list.forEach(function (a) {
      var li = document.createElement('li');
      var who = document.createElement('strong');
      who.textContent = a.by;
      li.appendChild(who);
      li.appendChild(document.createTextNode(', ' + a.at.replace('T', ' ').replace(/\\.\\d+Z$|Z$/, '') + ' UTC' + (a.verified ? ' (verified: ' + a.verified + ')' : '') + (a.comment ? ': \\u201c' + a.comment + '\\u201d' : '')));
      ul.appendChild(li);
    });
  }

  function show(v) {
    if (statusEl.textContent !== v.statusLine) statusEl.textContent = v.statusLine;
    statusEl.setAttribute('data-status', v.status);
    statusEl.setAttribute('data-final', v.final ? 'true' : 'false');
    statusEl.className = 'status status-' + v.status;
    showApprovals(v.approvals);
    var count = document.querySelector('.approval-count');
    if (count && count.textContent !== v.approvalCount) count.textContent = v.approvalCount;
    (v.operations || []).forEach(function (o, i) {
      var el = document.querySelector('li[data-op="' + i + '"] .outcome');
      if (el && el.textContent !== o.outcome) el.textContent = o.outcome;
    });
    if (form && (v.final || !v.mayDecide) && form.getAttribute('data-sent') === 'true') form.hidden = true;
  }

  function follow(everyMs) {
    clearTimeout(timer);
    timer = setTimeout(function () {
      fetch(api, { headers: { accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' })
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
        .then(function (v) { show(v); if (!v.final) follow(v.status === 'pending_approval' && form && form.getAttribute('data-sent') !== 'true' ? 15000 : 1000); })
        .catch(function () { follow(Math.min(everyMs * 2, 10000)); });
    }, everyMs);
  }

  if (form) {
    var chosen = 'approve';
    Array.prototype.forEach.call(form.querySelectorAll('button[name=decision]'), function (b) {
      b.addEventListener('click', function () { chosen = b.value; });
    });
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var decision = (e.submitter && e.submitter.value) || chosen;
      var comment = form.elements.namedItem('comment').value;
      if (decision === 'reject' && comment.trim() === '') { showError('A reason is required to reject: write it in the comment.', 'comment'); return; }
      var buttons = form.querySelectorAll('button');
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
      if (errorEl) errorEl.hidden = true;
      statusEl.textContent = decision === 'approve' ? 'Sending your approval\\u2026' : 'Sending your rejection\\u2026';
      fetch(api + '/decision', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': csrf },
        body: JSON.stringify(comment.trim() ? { decision: decision, comment: comment } : { decision: decision }),
      })
        .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
        .then(function (r) {
          if (!r.ok) {
            Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
            var field = r.body.errors && r.body.errors[0] && r.body.errors[0].path === 'comment' ? 'comment' : undefined;
            showError((r.body.title || 'Refused') + (r.body.detail ? ': ' + r.body.detail : ''), field);
            follow(1000);
            return;
          }
          form.setAttribute('data-sent', 'true');
          form.hidden = true;
          show(r.body.view);
          if (!r.body.counted && r.body.why) { statusEl.textContent = r.body.view.statusLine + ' (your decision did not count: ' + r.body.why + ')'; }
          if (!r.body.view.final) follow(1000);
        })
        .catch(function () {
          Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
          showError('The server did not answer; your decision may not have been sent. Reload the page to see the status.');
        });
    });
  }

  if (statusEl.getAttribute('data-final') !== 'true') follow(statusEl.getAttribute('data-status') === 'pending_approval' ? 15000 : 1000);
})();
`;
