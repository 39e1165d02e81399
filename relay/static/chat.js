// A small chat page for the relay, and a worked example of its wire format:
// POST /api/chat, then read {"model":"..."} followed by the reply's text as it streams.
"use strict";

const $ = (id) => document.getElementById(id);
const conversation = []; // {role, content}, sent as context on every turn
let controller = null; // the AbortController of the reply being read

// -- settings, kept in this browser only ------------------------------------------------------

const SETTINGS = ["url", "token", "model"];

function loadSettings() {
  for (const name of SETTINGS) {
    const saved = safeStorage("get", `relay.${name}`);
    if (saved !== null) $(name).value = saved;
    $(name).addEventListener("input", () => safeStorage("set", `relay.${name}`, $(name).value));
  }
}

function safeStorage(action, key, value) {
  try {
    return action === "get" ? localStorage.getItem(key) : localStorage.setItem(key, value);
  } catch {
    return null; // storage disabled: settings last for this visit
  }
}

function endpoint() {
  const base = ($("url").value.trim() || location.origin).replace(/\/+$/, "");
  return base.endsWith("/api/chat") ? base : `${base}/api/chat`;
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

// -- the conversation ---------------------------------------------------------------------------

function addTurn(role, text = "") {
  const item = document.createElement("li");
  item.className = `turn ${role}`;
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = role === "user" ? "You" : "Assistant";
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  item.append(meta, body);
  $("conversation").append(item);
  $("empty").hidden = true;
  item.scrollIntoView({ block: "end" });
  return { item, meta, body };
}

// Send or Stop, whichever applies; the status line too, when given.
function setBusy(busy, status) {
  $("send").disabled = busy;
  $("stop").disabled = !busy;
  if (status !== undefined) $("status").textContent = status;
}

async function send() {
  const text = $("message").value.trim();
  if (!text || controller) return;
  $("message").value = "";
  conversation.push({ role: "user", content: text });
  addTurn("user", text);
  const turn = addTurn("assistant");
  turn.body.classList.add("waiting");
  controller = new AbortController();
  setBusy(true, "Waiting for the first token…");

  let answer = "";
  const url = endpoint();
  try {
    const headers = { "Content-Type": "application/json" };
    const token = $("token").value.trim();
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers,
        body: JSON.stringify({ model: $("model").value.trim(), messages: conversation }),
        signal: controller.signal,
      });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new Error(
        `Could not reach the relay at ${url}: the network failed, or the relay does not allow ` +
          `this page's origin (${location.origin}); its owner can add it to ALLOWED_ORIGINS.`,
      );
    }
    if (!response.ok) {
      const message = (await response.text()).trim();
      throw new Error(`HTTP ${response.status} ${response.statusText}: ${message || "(no message)"}`);
    }

    const wire = new WireReader((model) => (turn.meta.textContent = `Assistant · ${model}`));
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
        turn.body.append(chunk);
        turn.item.scrollIntoView({ block: "end" });
      }
      if (done) break;
    }
    $("status").textContent = "";
  } catch (error) {
    turn.body.classList.remove("waiting");
    if (error.name === "AbortError") {
      $("status").textContent = answer ? "Stopped. The partial answer is kept." : "Stopped.";
    } else {
      turn.item.classList.add("error");
      turn.body.append(answer ? `\n\n${error.message}` : error.message);
      $("status").textContent = "";
    }
  } finally {
    // The relay ends a failed stream with "\n\n[Error: …]"; the model need not see that again.
    const context = answer.replace(/\n\n\[Error: [^\]]*\]$/, "");
    if (context) {
      conversation.push({ role: "assistant", content: context });
    } else {
      conversation.pop(); // no answer: the question goes back to the box, to try again
      $("message").value ||= text;
    }
    controller = null;
    setBusy(false);
    $("message").focus();
  }
}

// -- wiring -------------------------------------------------------------------------------------

loadSettings();
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
$("message").focus();
