"""The rating page a rater's private link opens: plain HTML, CSS and JavaScript, served by the app itself (no
build step, no CDN, no inline script: the Content-Security-Policy allows only these files).

One item at a time: the source, "Output 1" and "Output 2" (inserted with `textContent`, so an output that
holds markup shows as text), the preference buttons and the Likert rows of the study's criteria, a progress
bar. The page keeps no state of its own: it asks the server for the rater's next unanswered item, so a
reload, or a visit a day later, resumes where the rater left off. Each answer carries a random idempotency
key made when the item was shown, so a double click or a retried request is stored once.

Keys: ←: Output 1 is better, →: Output 2, T: tie, B: both bad; for ratings, the highlighted row
takes 1–5 (then the next row is highlighted; ↑/↓ move); Enter sends.
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Human evaluation</title>
<link rel="stylesheet" href="/static/rate.css">
</head>
<body>
<h1>Human evaluation</h1>
<div id="bar"><div id="filled"></div></div>
<p id="progress" aria-live="polite"></p>
<main id="item" hidden>
  <section id="source-box"><h2>Source</h2><p id="source" class="text"></p></section>
  <div id="outputs">
    <section class="output"><h2>Output 1</h2><p id="output1" class="text"></p></section>
    <section class="output"><h2>Output 2</h2><p id="output2" class="text"></p></section>
  </div>
  <section id="preference" hidden>
    <h2>Which output is better?</h2>
    <button type="button" data-choice="left" title="key: ←">Output 1 <kbd>←</kbd></button>
    <button type="button" data-choice="right" title="key: →">Output 2 <kbd>→</kbd></button>
    <button type="button" data-choice="tie" title="key: T">Tie <kbd>T</kbd></button>
    <button type="button" data-choice="both_bad" title="key: B">Both bad <kbd>B</kbd></button>
  </section>
  <section id="ratings" hidden><h2>Rate each output (1 = very poor, 5 = very good)</h2><table id="scales"></table></section>
  <p><button type="button" id="send" disabled>Send <kbd>Enter</kbd></button> <span id="error" role="alert"></span></p>
  <p class="help">Keys: ← Output 1 · → Output 2 · T tie · B both bad · 1–5 rate the highlighted row
  (↑ ↓ move) · Enter send</p>
</main>
<p id="done" hidden>All done — thank you! You can close this page.</p>
<script src="/static/rate.js"></script>
</body>
</html>
"""

STYLE = """body { font: 16px/1.45 system-ui, sans-serif; max-width: 60rem; margin: 1.5rem auto; padding: 0 1rem; }
h1 { font-size: 1.3rem; } h2 { font-size: 1rem; margin: .2rem 0; }
#bar { height: .6rem; background: #eee; border-radius: .3rem; overflow: hidden; }
#filled { height: 100%; width: 0; background: #2a7; transition: width .2s; }
.text { white-space: pre-wrap; border: 1px solid #ccc; padding: .6rem; margin: 0; min-height: 1.5rem; }
#outputs { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; margin: 1rem 0; }
button { font: inherit; padding: .3rem .8rem; margin: .2rem .3rem .2rem 0; }
button.chosen { background: #2a7; color: #fff; }
td { padding: .15rem .4rem; } tr.active { background: #fff3c4; }
#error { color: #b00; } .help { color: #666; font-size: .85rem; }
"""

SCRIPT = r"""'use strict';
const token = location.pathname.split('/').filter(Boolean).pop();
const api = '/api/r/' + encodeURIComponent(token);
let task = null, criteria = [], current = null, choice = null, ratings = {}, rows = [], active = 0;
let key = null, shownAt = 0, sending = false;

function newKey() {  // crypto.getRandomValues also works on plain http (randomUUID needs a secure context)
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
}

function setText(id, text) { document.getElementById(id).textContent = text == null ? '' : text; }

function buildScales() {
  const table = document.getElementById('scales');
  table.replaceChildren();
  rows = [];
  criteria.forEach(criterion => {
    [0, 1].forEach(side => {
      const tr = document.createElement('tr');
      const label = document.createElement('td');
      label.textContent = criterion + ' — Output ' + (side + 1);
      tr.appendChild(label);
      for (let value = 1; value <= 5; value++) {
        const td = document.createElement('td');
        const input = document.createElement('input');
        input.type = 'radio';
        input.name = criterion + '-' + side;
        input.value = String(value);
        input.id = criterion + '-' + side + '-' + value;
        input.addEventListener('change', () => { rate(criterion, side, value); });
        const text = document.createElement('label');
        text.htmlFor = input.id;
        text.textContent = ' ' + value;
        td.append(input, text);
        tr.appendChild(td);
      }
      tr.addEventListener('click', () => { active = rows.indexOf(tr); highlight(); });
      tr.dataset.criterion = criterion;
      tr.dataset.side = String(side);
      table.appendChild(tr);
      rows.push(tr);
    });
  });
}

function highlight() { rows.forEach((tr, i) => tr.classList.toggle('active', i === active)); }

function rate(criterion, side, value) {
  ratings[criterion] = ratings[criterion] || [null, null];
  ratings[criterion][side] = value;
  document.getElementById(criterion + '-' + side + '-' + value).checked = true;
  ready();
}

function choose(value) {
  choice = value;
  document.querySelectorAll('#preference button').forEach(b => b.classList.toggle('chosen', b.dataset.choice === value));
  ready();
}

function complete() {
  const preferenceDone = task === 'rating' || choice !== null;
  const ratingsDone = task === 'pairwise' || criteria.every(c => ratings[c] && ratings[c][0] && ratings[c][1]);
  return current !== null && preferenceDone && ratingsDone;
}

function ready() { document.getElementById('send').disabled = !complete() || sending; }

function show(state) {
  const answered = state.progress.answered, total = state.progress.total;
  document.getElementById('filled').style.width = (total ? 100 * answered / total : 100) + '%';
  setText('progress', answered + ' of ' + total + ' answered');
  current = state.item;
  if (current === null) {
    document.getElementById('item').hidden = true;
    document.getElementById('done').hidden = false;
    return;
  }
  setText('source', current.source);
  document.getElementById('source-box').hidden = current.source == null;
  setText('output1', current.outputs[0]);
  setText('output2', current.outputs[1]);
  choice = null; ratings = {}; active = 0; key = newKey(); shownAt = Date.now();
  document.querySelectorAll('#preference button').forEach(b => b.classList.remove('chosen'));
  document.querySelectorAll('#scales input').forEach(i => { i.checked = false; });
  highlight();
  setText('error', '');
  document.getElementById('item').hidden = false;
  ready();
}

async function call(url, options) {
  const response = await fetch(url, Object.assign({cache: 'no-store', credentials: 'omit'}, options || {}));
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || ('the server answered ' + response.status));
  return body;
}

async function send() {
  if (!complete() || sending) return;
  sending = true; ready();
  const body = {assignment: current.assignment, key: key, seconds: (Date.now() - shownAt) / 1000};
  if (task !== 'rating') body.choice = choice;
  if (task !== 'pairwise') body.ratings = ratings;
  for (let attempt = 0; ; attempt++) {  // a retry carries the same key: stored once
    try {
      show(await call(api + '/judgments', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)}));
      break;
    } catch (error) {
      if (attempt >= 2 || !(error instanceof TypeError)) { setText('error', error.message); break; }
      await new Promise(resolve => setTimeout(resolve, 500 * (attempt + 1)));
    }
  }
  sending = false; ready();
}

document.querySelectorAll('#preference button').forEach(b => b.addEventListener('click', () => choose(b.dataset.choice)));
document.getElementById('send').addEventListener('click', send);
document.addEventListener('keydown', event => {
  if (current === null || event.ctrlKey || event.metaKey || event.altKey) return;
  const k = event.key;
  const rating = task !== 'pairwise' && /^[1-5]$/.test(k);
  if (rating && rows.length) {
    rate(rows[active].dataset.criterion, Number(rows[active].dataset.side), Number(k));
    active = Math.min(active + 1, rows.length - 1); highlight();
  } else if (task !== 'rating' && k === 'ArrowLeft') choose('left');
  else if (task !== 'rating' && k === 'ArrowRight') choose('right');
  else if (task !== 'rating' && (k === 't' || k === 'T')) choose('tie');
  else if (task !== 'rating' && (k === 'b' || k === 'B')) choose('both_bad');
  else if (k === 'ArrowDown' && rows.length) { active = Math.min(active + 1, rows.length - 1); highlight(); }
  else if (k === 'ArrowUp' && rows.length) { active = Math.max(active - 1, 0); highlight(); }
  else if (k === 'Enter') send();
  else return;
  event.preventDefault();
});

(async () => {
  try {
    const state = await call(api + '/next');
    task = state.task; criteria = state.criteria;
    document.getElementById('preference').hidden = task === 'rating';
    document.getElementById('ratings').hidden = task === 'pairwise';
    if (task !== 'pairwise') buildScales();
    show(state);
  } catch (error) { setText('progress', error.message); }
})();
"""
