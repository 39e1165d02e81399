// A small chat page for the relay, and a worked example of its wire format:
// POST /api/chat, then read {"model":"..."} followed by the reply's text as it streams.
import { explainHttpError, splitStreamNote } from "./errors.js";
import { MarkdownView } from "./markdown.js";

const $ = (id) => document.getElementById(id);
const STORED_CONVERSATION = "relay.conversation";
// localStorage holds about 5 MB per origin; past this, the oldest turns are not kept on reload.
const MAX_STORED_CHARS = 1_000_000;

let conversation = []; // {role, content, model?}: shown, kept across a reload, sent as context
let controller = null; // the AbortController of the reply being read
let config = null; // the relay's /page-config.json ({clientKeys, accessTokens}); null: unknown

// An error the page explains in its own words: {status?, line, hint?, details?} (errors.js).
class ExplainedError extends Error {
  constructor(explanation) {
    super(explanation.line);
    this.explanation = explanation;
  }
}

// -- settings, kept in this browser only ------------------------------------------------------

const SETTINGS = ["url", "token", "apiKey", "model"];

function loadSettings() {
  for (const name of SETTINGS) {
    const saved = safeStorage("get", `relay.${name}`);
    if (saved !== null) $(name).value = saved;
    $(name).addEventListener("input", () => safeStorage("set", `relay.${name}`, $(name).value));
  }
}

function safeStorage(action, key, value) {
  try {
    if (action === "get") return localStorage.getItem(key);
    if (action === "remove") return localStorage.removeItem(key);
    return localStorage.setItem(key, value);
  } catch {
    return null; // storage disabled or full: this visit goes on without it
  }
}

function relayBase() {
  return ($("url").value.trim() || location.origin).replace(/\/+$/, "").replace(/\/api\/chat$/, "");
}

// What this relay accepts, so that the page offers only that. A relay that does not say (another
// deployment, an older one, one that refuses this origin) gets every field.
async function loadConfig() {
  const base = relayBase();
  let answer = null;
  try {
    const response = await fetch(`${base}/page-config.json`, { signal: AbortSignal.timeout(10_000) });
    if (response.ok) answer = await response.json();
  } catch {
    answer = null;
  }
  if (base !== relayBase()) return; // the URL changed meanwhile; its own load decides
  config = answer;
  $("token-field").hidden = config?.accessTokens === false;
  $("api-key-field").hidden = config?.clientKeys === false;
  $("key-refused").hidden = config?.clientKeys !== false;
  showEmptyHint();
}

function showEmptyHint() {
  $("empty").hidden = conversation.length > 0;
  $("empty").textContent =
    config?.accessTokens && !$("token").value.trim()
      ? "This relay needs an access token: paste it under Settings, then ask anything."
      : "Ask anything. The answer streams in as the model writes it.";
}

// -- the wire format ----------------------------------------------------------------------------

// Splits the body into the {"model":...} packet and the text after it, however the network cut it.
class WireReader {
  constructor(onModel) {
    this.onModel = onModel;
    this.started = false;
    this.pending = "";
  }

  // Returns the reply text in `chunk` (already decoded), holding back an unfinished model packet.
  feed(chunk) {
    if (this.started) return chunk;
    this.pending += chunk;
    if (!this.pending.startsWith("{")) return this.start(this.pending); // no packet: an error note
    for (let end = this.pending.indexOf("}"); end >= 0; end = this.pending.indexOf("}", end + 1)) {
      try {
        const packet = JSON.parse(this.pending.slice(0, end + 1));
        if (typeof packet.model === "string") this.onModel(packet.model);
        return this.start(this.pending.slice(end + 1));
      } catch {
        // not the end of the packet yet: a "}" inside the model's name
      }
    }
    return this.pending.length > 4096 ? this.start(this.pending) : "";
  }

  start(text) {
    this.started = true;
    this.pending = "";
    return text;
  }
}

// -- the conversation, on screen and in storage -------------------------------------------------

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function addTurn(role, model) {
  const item = element("li", `turn ${role}`);
  const meta = element("span", "meta", role === "user" ? "You" : "Assistant");
  if (model) meta.textContent += ` · ${model}`;
  const body = element("div", "text");
  item.append(meta, body);
  $("conversation").append(item);
  $("empty").hidden = true;
  keepLatestInView();
  return { item, meta, body };
}

function showTurn({ role, content, model }) {
  const turn = addTurn(role, model);
  if (role === "user") turn.body.textContent = content;
  else {
    new MarkdownView(turn.body).show(content);
    addCopyButton(turn, content);
  }
}

// A finished reply's Copy button: it copies the Markdown as the model wrote it.
function addCopyButton(turn, source) {
  const actions = element("div", "actions");
  const button = element("button", "copy-reply", "Copy");
  button.type = "button";
  button.addEventListener("click", () => copyText(source, button));
  actions.append(button);
  turn.item.append(actions);
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text); // needs a secure context: https or localhost
    button.textContent = "Copied";
  } catch {
    button.textContent = "Could not copy";
  }
  setTimeout(() => (button.textContent = "Copy"), 1500);
}

function showError(turn, { status, line, hint, details }) {
  const message = element("p", "error-line");
  if (status) message.append(element("strong", "status", `HTTP ${status}`), " ");
  message.append(line);
  turn.body.append(message);
  if (hint) turn.body.append(element("p", "hint", hint));
  if (details) {
    // The relay's answer word for word, for whoever needs more than the line above.
    const more = element("details", "error-details");
    more.append(element("summary", "", "Details"), element("pre", "", details));
    turn.body.append(more);
  }
}

function restoreConversation() {
  let saved;
  try {
    saved = JSON.parse(safeStorage("get", STORED_CONVERSATION) ?? "[]");
  } catch {
    saved = []; // not ours, or cut short: start afresh
  }
  conversation = (Array.isArray(saved) ? saved : []).filter(
    (turn) => ["user", "assistant"].includes(turn?.role) && typeof turn.content === "string",
  );
  conversation.forEach(showTurn);
}

function saveConversation() {
  if (!conversation.length) {
    safeStorage("remove", STORED_CONVERSATION);
    return;
  }
  const sizes = conversation.map((turn) => JSON.stringify(turn).length + 1);
  let total = sizes.reduce((sum, size) => sum + size, 2);
  let first = 0;
  while (total > MAX_STORED_CHARS && first < conversation.length - 1) total -= sizes[first++];
  safeStorage("set", STORED_CONVERSATION, JSON.stringify(conversation.slice(first)));
}

function newChat() {
  if (controller) return;
  conversation = [];
  saveConversation();
  $("conversation").replaceChildren();
  $("status").textContent = "";
  showEmptyHint();
  $("message").focus();
}

// -- keeping the newest text in view ------------------------------------------------------------

// The composer is sticky at the bottom, so the newest text is visible only when the page is
// scrolled to its end. Follow the reply there, unless the reader scrolled up to read: then
// leave the page where it is and offer the way back down.
let following = true;
let lastScrollY = window.scrollY;

function atBottom() {
  return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 8;
}

function keepLatestInView() {
  if (following) window.scrollTo(0, document.documentElement.scrollHeight);
  $("jump").hidden = following;
}

function followAgain() {
  following = true;
  keepLatestInView();
}

window.addEventListener(
  "scroll",
  () => {
    if (atBottom()) following = true;
    else if (window.scrollY < lastScrollY) following = false; // growth never scrolls up; a reader does
    lastScrollY = window.scrollY;
    $("jump").hidden = following;
  },
  { passive: true },
);
// The wheel says it before the scroll happens, so a reply growing in the same frame cannot win.
// (Not a wheel over the composer: the message box scrolls on its own.)
window.addEventListener(
  "wheel",
  (event) => {
    if (event.deltaY < 0 && window.scrollY > 0 && !event.target.closest?.("footer")) {
      following = false;
      $("jump").hidden = false;
    }
  },
  { passive: true },
);
// What grows below: a reply, the status line, a taller message box. Not the settings panel,
// which opens at the top and would be scrolled away from the reader who opened it.
const growth = new ResizeObserver(keepLatestInView);
growth.observe($("conversation"));
growth.observe(document.querySelector("footer"));
window.addEventListener("resize", () => {
  if (!document.activeElement?.closest("header")) keepLatestInView(); // not while typing a setting
});

// -- sending ------------------------------------------------------------------------------------

// Send or Stop, whichever applies; the status line too, when given.
function setBusy(busy, status) {
  $("send").disabled = busy;
  $("stop").disabled = !busy;
  $("new-chat").disabled = busy;
  if (status !== undefined) $("status").textContent = status;
}

async function postChat(url) {
  const headers = { "Content-Type": "application/json" };
  const token = $("token").value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  const body = {
    model: $("model").value.trim(),
    messages: conversation.map(({ role, content }) => ({ role, content })),
  };
  // The user's own key, if they gave one and this relay takes it (else it would refuse the request).
  const apiKey = $("apiKey").value.trim();
  if (apiKey && config?.clientKeys !== false) body.apiKey = apiKey;
  try {
    return await fetch(url, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      signal: controller.signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ExplainedError({
      line:
        `Could not reach the relay at ${url}: the network failed, or the relay does not allow ` +
        `this page's origin (${location.origin}); its owner can add it to ALLOWED_ORIGINS.`,
      details: String(error),
    });
  }
}

async function send() {
  const text = $("message").value.trim();
  if (!text || controller) return;
  $("message").value = "";
  following = true; // whoever asks wants to see the answer
  conversation.push({ role: "user", content: text });
  showTurn({ role: "user", content: text });
  const turn = addTurn("assistant");
  turn.body.classList.add("waiting");
  controller = new AbortController();
  setBusy(true, "Waiting for the first token…");

  const view = new MarkdownView(turn.body);
  let answer = "";
  let model = "";
  let frame = 0; // at most one render per frame, however fast the tokens come
  const render = () => {
    frame = 0;
    view.show(splitStreamNote(answer).text);
  };
  let failure = null;
  try {
    const url = `${relayBase()}/api/chat`;
    const response = await postChat(url);
    if (!response.ok) {
      throw new ExplainedError(explainHttpError(response.status, await response.text(), config));
    }

    const wire = new WireReader((name) => {
      model = name;
      turn.meta.textContent = `Assistant · ${name}`;
    });
    const decoder = new TextDecoder(); // stream: true keeps a character split between reads whole
    const reader = response.body.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      const chunk = wire.feed(done ? decoder.decode() : decoder.decode(value, { stream: true }));
      if (chunk) {
        if (!answer) {
          turn.body.classList.remove("waiting");
          $("status").textContent = "Streaming… (Stop keeps what has arrived)";
        }
        answer += chunk;
        frame ||= requestAnimationFrame(render);
      }
      if (done) break;
    }
    $("status").textContent = "";
  } catch (error) {
    failure = error;
  } finally {
    cancelAnimationFrame(frame);
    turn.body.classList.remove("waiting");
    // The relay ends a failed stream with "\n\n[Error: …]": shown as an error, not as the reply.
    const { text: reply, note } = splitStreamNote(answer);
    view.show(reply);
    if (failure?.name === "AbortError") {
      $("status").textContent = reply ? "Stopped. The partial answer is kept." : "Stopped.";
    } else if (failure) {
      turn.item.classList.add("error");
      // Not explained: the connection broke while the reply was being read.
      showError(turn, failure.explanation ?? { line: `The connection broke: ${failure.message}` });
      $("status").textContent = "";
    } else if (note) {
      showError(turn, { line: `The reply broke off: ${note}` });
    } else if (!reply) {
      turn.body.append(element("p", "hint", "The model sent an empty reply."));
    }
    if (reply) {
      conversation.push({ role: "assistant", content: reply, ...(model && { model }) });
      addCopyButton(turn, reply);
    } else {
      conversation.pop(); // no answer: the question goes back to the box, to try again
      $("message").value ||= text;
    }
    saveConversation();
    controller = null;
    setBusy(false);
    $("message").focus();
    keepLatestInView();
  }
}

// -- wiring -------------------------------------------------------------------------------------

loadSettings();
restoreConversation();
showEmptyHint();
loadConfig();
$("url").addEventListener("change", loadConfig);
$("token").addEventListener("input", showEmptyHint);
$("settings-form").addEventListener("submit", (event) => event.preventDefault());
$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});
$("message").addEventListener("keydown", (event) => {
  // Enter sends; Shift+Enter is a new line; an IME composing text keeps its Enter.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
$("stop").addEventListener("click", () => controller?.abort());
$("new-chat").addEventListener("click", newChat);
$("jump").addEventListener("click", followAgain);
// A code block's Copy button copies its code.
$("conversation").addEventListener("click", (event) => {
  const button = event.target.closest(".copy-code");
  if (button) copyText(button.closest(".code").querySelector("code").textContent, button);
});
$("message").focus();
