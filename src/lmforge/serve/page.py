"""The playground at `/`: one static page, plain HTML and JavaScript (no build step, no CDN). It lists the
models, chats with or completes from a generator with streamed tokens, tokens/s and usage, compares
sentence similarities with an embedding model, and asks the `assistant` (`--index IDX --reader QA`)
questions: its answer streams in, and each cited passage is shown under it with its document, title and
offsets, the answer marked in it. The API key is asked for and kept in the browser's session
storage, never embedded in the page; model output and documents' titles and text are inserted as text (`textContent`), never as HTML.

`POLICY` is the page's Content-Security-Policy: everything from the server itself, and no script but the
page's own (allowed by its hash), so that even markup that got into the page could not run an inline
handler such as `onerror=`."""

from lmforge.html import script_hash

BODY = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lmforge playground</title>
<style>
body { font: 15px/1.4 system-ui, sans-serif; max-width: 56rem; margin: 1.5rem auto; padding: 0 1rem; }
fieldset { border: 1px solid #ccc; margin: 0 0 1rem; }
label { margin-right: 1rem; }
textarea { width: 100%; box-sizing: border-box; font: 14px monospace; }
#result { white-space: pre-wrap; font: 14px monospace; border: 1px solid #ccc; padding: .5rem; min-height: 6rem; }
#echo { color: #777; }
#reply { white-space: pre-wrap; border: 1px solid #ccc; padding: .5rem; min-height: 2rem; }
#citations { list-style: none; padding-left: 0; } #citations li { margin: .5rem 0; } .source { color: #555; font-size: 13px; }
.passage { white-space: pre-wrap; margin: .25rem 0 0; padding: .25rem .5rem; border-left: 3px solid #ccc; }
#status, #error { margin: .5rem 0; } #error { color: #b00; }
input[type=number] { width: 5rem; }
</style>
</head>
<body>
<h1>lmforge playground</h1>
<fieldset><legend>server</legend>
<label>API key <input id="key" type="password" autocomplete="off" placeholder="(none)"></label>
<label>model <select id="model"></select></label> <span id="task"></span>
</fieldset>
<fieldset id="generate"><legend>generate</legend>
<label><input type="radio" name="mode" value="chat" checked> chat</label>
<label><input type="radio" name="mode" value="complete"> complete</label><br>
<label>temperature <input id="temperature" type="number" step="0.1" min="0" max="2" value="0"></label>
<label>top_p <input id="top_p" type="number" step="0.05" min="0.05" max="1" value="1"></label>
<label>max tokens <input id="max_tokens" type="number" min="1" value="64"></label>
<label>seed <input id="seed" type="number" min="0" placeholder="none"></label>
<textarea id="prompt" rows="5" placeholder="Type a prompt"></textarea>
<button id="send">Send</button> <button id="stop" disabled>Stop</button>
<div id="status"></div>
<div id="result"><span id="echo"></span><span id="output"></span></div>
</fieldset>
<fieldset id="similar" hidden><legend>sentence similarity</legend>
<textarea id="sentences" rows="5" placeholder="One sentence per line"></textarea>
<button id="compare">Compare</button>
<table id="table"></table>
</fieldset>
<fieldset id="assistant" hidden><legend>assistant</legend>
<textarea id="question" rows="2" placeholder="Ask a question about the indexed documents"></textarea>
<button id="ask">Ask</button>
<div id="assistant-status"></div>
<div id="reply"></div>
<ol id="citations"></ol>
</fieldset>
<div id="error"></div>
"""

SCRIPT = """
"use strict";
const $ = (id) => document.getElementById(id);
$("key").value = sessionStorage.getItem("lmforge-key") || "";
$("key").addEventListener("change", () => { sessionStorage.setItem("lmforge-key", $("key").value); loadModels(); });
let models = {}, controller = null;

function headers() {
  const h = {"Content-Type": "application/json"};
  if ($("key").value) h["Authorization"] = "Bearer " + $("key").value;
  return h;
}
function showError(text) { $("error").textContent = text; }
async function failure(response) {
  try { return (await response.json()).error.message; } catch (e) { return response.status + " " + response.statusText; }
}
async function loadModels() {
  showError("");
  const response = await fetch("/v1/models", {headers: headers()});
  if (!response.ok) { showError(await failure(response)); return; }
  const select = $("model"); select.textContent = "";
  models = {};
  for (const m of (await response.json()).data) {
    models[m.id] = m.lmforge;
    const option = document.createElement("option");
    option.value = m.id; option.textContent = m.id + " (" + m.lmforge.task + ")";
    select.appendChild(option);
  }
  pick();
}
function pick() {
  const about = models[$("model").value] || {}, task = about.task || "";
  if (about.context_length) {  // leave room for a prompt: at most half the context by default
    const box = $("max_tokens");
    box.max = about.context_length;
    box.value = Math.max(1, Math.min(64, Math.floor(about.context_length / 2)));
  }
  $("task").textContent = task;
  $("generate").hidden = !(task === "generation" || task === "translation");
  $("similar").hidden = task !== "embedding";
  $("assistant").hidden = task !== "assistant";
}
$("model").addEventListener("change", pick);

async function send() {
  showError(""); $("output").textContent = ""; $("status").textContent = "";
  const model = $("model").value, chat = document.querySelector("input[name=mode]:checked").value === "chat"
    && (models[model] || {}).task === "generation";
  const body = {model, stream: true, stream_options: {include_usage: true},
    temperature: Number($("temperature").value), top_p: Number($("top_p").value),
    max_tokens: Number($("max_tokens").value)};
  if ($("seed").value !== "") body.seed = Number($("seed").value);
  if (chat) body.messages = [{role: "user", content: $("prompt").value}]; else body.prompt = $("prompt").value;
  $("echo").textContent = chat ? "" : $("prompt").value;  // a completion reads on from its prompt
  controller = new AbortController();
  $("send").disabled = true; $("stop").disabled = false;
  const started = performance.now(); let first = null, tokens = 0;
  try {
    const response = await fetch(chat ? "/v1/chat/completions" : "/v1/completions",
      {method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal});
    if (!response.ok) { showError(await failure(response)); return; }
    await readEvents(response, (event) => {
      if (event.usage) {
        const seconds = (performance.now() - (first || started)) / 1000;
        tokens = event.usage.completion_tokens;
        $("status").textContent = "usage: " + event.usage.prompt_tokens + " prompt + " + tokens +
          " completion tokens; " + (tokens / Math.max(seconds, 1e-3)).toFixed(1) + " tokens/s";
      }
      for (const choice of event.choices) {
        const piece = chat ? (choice.delta.content || "") : (choice.text || "");
        if (piece && first === null) first = performance.now();
        $("output").append(document.createTextNode(piece));
      }
    });
  } catch (e) {
    if (e.name !== "AbortError") showError(String(e));
  } finally {
    $("send").disabled = false; $("stop").disabled = true; controller = null;
  }
}
$("send").addEventListener("click", send);

// the server-sent events of a streamed response, each parsed and handed to onEvent; an error event (a
// failure after the stream began) is shown instead
async function readEvents(response, onEvent) {
  const reader = response.body.getReader(), decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, {stream: true});
    let end;
    while ((end = buffer.indexOf("\\n\\n")) >= 0) {
      const line = buffer.slice(0, end); buffer = buffer.slice(end + 2);
      if (!line.startsWith("data: ")) continue;
      const data = line.slice(6);
      if (data === "[DONE]") continue;
      const event = JSON.parse(data);
      if (event.error) { showError(event.error.message); continue; }
      onEvent(event);
    }
  }
}

// a cited passage: its source line, then its text with the first occurrence of the answer marked
function showCitation(citation, number, answer) {
  const item = document.createElement("li"), source = document.createElement("div");
  source.className = "source";
  source.textContent = "[" + number + "] " + (citation.title ? citation.title + " \u2014 " : "") +
    citation.doc_id + " [" + citation.start + ":" + citation.end + "]";
  const passage = document.createElement("div");
  passage.className = "passage";
  const at = answer ? citation.text.indexOf(answer) : -1;
  if (at < 0) {
    passage.textContent = citation.text;
  } else {
    const mark = document.createElement("mark");
    mark.textContent = answer;
    passage.append(document.createTextNode(citation.text.slice(0, at)), mark,
      document.createTextNode(citation.text.slice(at + answer.length)));
  }
  item.append(source, passage);
  $("citations").appendChild(item);
}

async function ask() {
  showError(""); $("reply").textContent = ""; $("citations").textContent = "";
  $("assistant-status").textContent = "";
  $("ask").disabled = true;
  const body = {model: $("model").value, stream: true, stream_options: {include_usage: true},
    messages: [{role: "user", content: $("question").value}]};
  let citations = null, answer = null;
  try {
    const response = await fetch("/v1/chat/completions", {method: "POST", headers: headers(), body: JSON.stringify(body)});
    if (!response.ok) { showError(await failure(response)); return; }
    await readEvents(response, (event) => {
      if (citations === null && event.citations) citations = event.citations;
      for (const choice of event.choices) {
        const piece = choice.delta.content || "";
        if (piece && answer === null) answer = piece;  // the first piece is the answer, the rest its sources
        $("reply").append(document.createTextNode(piece));
      }
      if (event.usage) {
        $("assistant-status").textContent = "usage: " + event.usage.prompt_tokens + " tokens read, " +
          event.usage.completion_tokens + " in the reply";
      }
    });
    (citations || []).forEach((c, i) => showCitation(c, i + 1, answer));
  } catch (e) {
    showError(String(e));
  } finally {
    $("ask").disabled = false;
  }
}
$("ask").addEventListener("click", ask);
$("stop").addEventListener("click", () => controller && controller.abort());

async function compare() {
  showError("");
  const sentences = $("sentences").value.split("\\n").map((s) => s.trim()).filter((s) => s);
  const response = await fetch("/v1/embeddings", {method: "POST", headers: headers(),
    body: JSON.stringify({model: $("model").value, input: sentences})});
  if (!response.ok) { showError(await failure(response)); return; }
  const vectors = (await response.json()).data.map((d) => d.embedding);
  const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  const cosine = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0) / (norm(a) * norm(b));
  const table = $("table"); table.textContent = "";
  const head = table.insertRow(); head.insertCell();
  sentences.forEach((s, j) => { head.insertCell().textContent = String(j + 1); });
  sentences.forEach((s, i) => {
    const row = table.insertRow(); row.insertCell().textContent = (i + 1) + ". " + s;
    vectors.forEach((v, j) => { row.insertCell().textContent = cosine(vectors[i], v).toFixed(3); });
  });
}
$("compare").addEventListener("click", compare);
loadModels();
"""

PAGE = BODY + "<script>" + SCRIPT + "</script>\n</body>\n</html>\n"
POLICY = (
    f"default-src 'self'; script-src {script_hash(SCRIPT)}; style-src 'self' 'unsafe-inline'; img-src 'self'"
)
