// What went wrong, in one line a person can read, and what to do about it on this page.
// The relay's answer stays available word for word, one click away (the page shows it in a
// <details>), so nothing is hidden from someone who needs it; these functions do no I/O.
const MAX_LINE = 600; // an upstream's message is shown whole up to this many characters

// The relay's words for an upstream's error status (docs/wire-format.md):
// OpenAI API error: <status> <reason> <the upstream's JSON body, compact, or {}>[ (the relay's note)]
const UPSTREAM_ERROR = /^OpenAI API error: (\d{3}) ([^{]*?) ?(\{.*\})(.*)$/s;
const MISSING_KEY = "Error: missing OpenAI API Key.";
const KEY_REFUSED = "This relay does not accept your own API key";
const HOW_TO_SEND_A_TOKEN = / ?Send the header "?Authorization: Bearer <token>.*$/s;
// The relay's note at the end of a reply that failed after it began: "\n\n[Error: …]".
const NOTE_START = "\n\n[Error: ";

/**
 * The page's reading of an HTTP error from the relay.
 * `config` is the relay's /page-config.json ({clientKeys, accessTokens}), or null if unknown.
 * Returns {status, line, hint, details}: details is the relay's answer when it says more than line.
 */
export function explainHttpError(status, body, config) {
  const text = body.trim();
  let line = text || "The relay answered without a message.";
  let hint = "";
  const upstream = UPSTREAM_ERROR.exec(text);
  if (upstream) {
    const [, code, reason, json, note] = upstream;
    line = upstreamMessage(json) || `The model's provider answered ${`${code} ${reason}`.trim()}.`;
    if (note.trim()) line += ` ${note.trim()}`; // e.g. "(unexpected status …; check OPENAI_BASE_URL)"
  } else if (status === 401) {
    line = text.replace(HOW_TO_SEND_A_TOKEN, "") || line;
    hint = "Paste an access token under Settings (the relay's owner can give you one).";
  } else if (text.startsWith(MISSING_KEY)) {
    line = "This relay has no OpenAI API key of its own.";
    hint =
      config?.clientKeys === false
        ? "It does not accept your own key either: ask the relay's owner to set one."
        : "Paste your OpenAI API key under Settings, or ask the relay's owner to set one.";
  } else if (text.startsWith(KEY_REFUSED)) {
    line = "This relay does not accept your own OpenAI API key.";
    hint = "Clear the OpenAI API key under Settings to use the relay's own.";
  }
  if (line.length > MAX_LINE) line = `${line.slice(0, MAX_LINE)}…`;
  return { status, line, hint, details: text && text !== line ? text : "" };
}

// error.message of an OpenAI-style error body, or what other providers put there.
function upstreamMessage(json) {
  let payload;
  try {
    payload = JSON.parse(json);
  } catch {
    return "";
  }
  const error = payload?.error;
  for (const candidate of [error?.message, error, payload?.message, payload?.detail]) {
    if (typeof candidate === "string" && candidate.trim()) return candidate.trim();
  }
  return "";
}

/** The reply's text and the relay's closing error note, if it ended with one. */
export function splitStreamNote(answer) {
  const start = answer.lastIndexOf(NOTE_START);
  if (start < 0 || !answer.endsWith("]")) return { text: answer, note: "" };
  return { text: answer.slice(0, start), note: answer.slice(start + NOTE_START.length, -1) };
}
