// A small Markdown renderer for the model's replies: text in, DOM nodes out.
//
// The reply is untrusted text. Every node here is made with createElement, and every piece of
// the reply goes in as a Text node or textContent, never as HTML; a link is made only for an
// http(s) URL. The work is bounded whatever the text: nesting stops at a fixed depth (deeper
// markers stay text), and every search for a closing marker is charged to a budget proportional
// to the text's length; once it is spent, the rest of the reply is shown as plain text.
//
// What it reads: paragraphs (a single newline is a line break, as chat users type), # headings,
// fenced code blocks (``` or ~~~, unclosed ones run to the end: a reply still streaming),
// bullet and numbered lists (nested by indentation), > quotes, --- rules, GFM tables, and inline
// `code`, **bold**, *italic*, ~~struck~~, [links](https://…) and bare https://… URLs.
const MAX_DEPTH = 8; // lists and quotes inside each other; deeper markers stay text
const MAX_INLINE_DEPTH = 6; // emphasis inside emphasis
const WORK_PER_CHAR = 40; // characters scanned per character of the reply, at most
const MAX_LINK_TEXT = 1000; // a "[" further than this from its "](" is not a link
const MAX_URL = 2048;
const MAX_TABLE_COLUMNS = 50;

// A backtick fence's info string holds no backtick: ```inline``` is code in a paragraph.
const FENCE = /^ {0,3}(`{3,}(?=[^`]*$)|~{3,})[ \t]*([^`\s]*)/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+|$)(.*)$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const ITEM = /^([ \t]*)([-*+]|\d{1,9}[.)])(?:([ \t]+)(.*))?$/;
const TABLE_RULE_CELL = /^[ \t]*:?-+:?[ \t]*$/;
const SPECIAL = /[\\`*_~[]|\bhttps?:\/\//g;
const BARE_URL = /https?:\/\/[^\s<>"'`]+/y;
const PUNCTUATION = /[!-/:-@[-`{-~]/;
const EMPHASIS = {
  "*": { 1: ["em"], 2: ["strong"], 3: ["strong", "em"] },
  _: { 1: ["em"], 2: ["strong"], 3: ["strong", "em"] },
  "~": { 2: ["del"] },
};

/** The reply's Markdown as a fragment of new nodes. */
export function renderMarkdown(source) {
  const fragment = document.createDocumentFragment();
  new MarkdownView(fragment).show(source);
  return fragment;
}

/**
 * Shows a growing reply in `element`. Each call to show() re-parses the text into top-level
 * blocks (cheap: a regular expression per line) but rebuilds only the blocks whose text
 * changed, which while streaming is the last one or two.
 */
export class MarkdownView {
  constructor(element) {
    this.element = element;
    this.blocks = []; // [{source, node}] in the order shown
  }

  show(source) {
    const lines = source.replace(/\r\n?/g, "\n").split("\n");
    const budget = { left: WORK_PER_CHAR * source.length + 10_000 };
    const spans = splitBlocks(lines, 0);
    let kept = 0;
    while (kept < spans.length && kept < this.blocks.length) {
      const { from, to } = spans[kept];
      if (this.blocks[kept].source !== lines.slice(from, to).join("\n")) break;
      kept += 1;
    }
    for (const old of this.blocks.splice(kept)) old.node.remove();
    for (const span of spans.slice(kept)) {
      const node = span.build(budget);
      this.blocks.push({ source: lines.slice(span.from, span.to).join("\n"), node });
      this.element.append(node);
    }
  }
}

// -- blocks -------------------------------------------------------------------------------------

function isBlank(line) {
  return line.trim() === "";
}

function indentOf(text) {
  let width = 0;
  for (const char of text) {
    if (char === " ") width += 1;
    else if (char === "\t") width += 4 - (width % 4);
    else break;
  }
  return width;
}

// Removes up to `width` columns of leading whitespace.
function dedent(line, width) {
  let index = 0;
  let column = 0;
  while (index < line.length && column < width && (line[index] === " " || line[index] === "\t")) {
    column += line[index] === "\t" ? 4 - (column % 4) : 1;
    index += 1;
  }
  return line.slice(index);
}

// A line that ends a paragraph because another block begins on it.
function startsBlock(line, depth) {
  return (
    FENCE.test(line) ||
    HEADING.test(line) ||
    RULE.test(line) ||
    (depth < MAX_DEPTH && (QUOTE.test(line) || ITEM.test(line)))
  );
}

/** The blocks of `lines` as spans {from, to, build(budget) -> node}. */
function splitBlocks(lines, depth) {
  const spans = [];
  let index = 0;
  while (index < lines.length) {
    const line = lines[index];
    const from = index;
    let match;
    if (isBlank(line)) {
      index += 1;
      continue;
    }
    if ((match = FENCE.exec(line))) {
      const [, fence, language] = match;
      const closing = new RegExp(`^ {0,3}${fence[0] === "`" ? "`" : "~"}{${fence.length},}[ \\t]*$`);
      index += 1;
      while (index < lines.length && !closing.test(lines[index])) index += 1;
      const code = lines.slice(from + 1, index).join("\n");
      index = Math.min(index + 1, lines.length);
      spans.push({ from, to: index, build: () => codeBlock(code, language) });
    } else if ((match = HEADING.exec(line))) {
      const [, marks, text] = match;
      index += 1;
      const content = withoutClosingHashes(text);
      // The page's own title is the h1; a reply's headings sit below it (# is an h2).
      const tag = `h${Math.min(marks.length + 1, 6)}`;
      spans.push({ from, to: index, build: (budget) => inlineElement(tag, content, budget) });
    } else if (RULE.test(line)) {
      index += 1;
      spans.push({ from, to: index, build: () => document.createElement("hr") });
    } else if (depth < MAX_DEPTH && QUOTE.test(line)) {
      const inner = [];
      while (index < lines.length && !isBlank(lines[index])) {
        const quoted = QUOTE.exec(lines[index]);
        if (!quoted && startsBlock(lines[index], depth)) break;
        inner.push(quoted ? quoted[1] : lines[index]); // a line without ">" continues the quote
        index += 1;
      }
      spans.push({ from, to: index, build: (budget) => container("blockquote", inner, depth + 1, budget) });
    } else if (depth < MAX_DEPTH && ITEM.test(line)) {
      const list = readList(lines, index, depth);
      index = list.end;
      spans.push({ from, to: index, build: (budget) => buildList(list, depth, budget) });
    } else if (line.includes("|") && index + 1 < lines.length && isTableRule(lines[index + 1], line)) {
      index += 2;
      while (index < lines.length && lines[index].includes("|") && !isBlank(lines[index])) index += 1;
      const rows = lines.slice(from, index);
      spans.push({ from, to: index, build: (budget) => table(rows, budget) });
    } else {
      index += 1;
      while (index < lines.length && !isBlank(lines[index]) && !startsBlock(lines[index], depth)) {
        index += 1;
      }
      const text = lines.slice(from, index).join("\n");
      spans.push({ from, to: index, build: (budget) => inlineElement("p", text, budget) });
    }
  }
  return spans;
}

// "## Title ##" is titled "Title". (No regular expression: one on "#  …  x" would backtrack.)
function withoutClosingHashes(text) {
  let end = text.trimEnd().length;
  let hashes = end;
  while (hashes > 0 && text[hashes - 1] === "#") hashes -= 1;
  if (hashes < end && (hashes === 0 || text[hashes - 1] === " " || text[hashes - 1] === "\t")) end = hashes;
  return text.slice(0, end).trimEnd();
}

function container(tag, lines, depth, budget) {
  const element = document.createElement(tag);
  for (const span of splitBlocks(lines, depth)) element.append(span.build(budget));
  return element;
}

function codeBlock(code, language) {
  const figure = document.createElement("div");
  figure.className = "code";
  const bar = document.createElement("div");
  bar.className = "code-bar";
  const label = document.createElement("span");
  label.textContent = language.slice(0, 40);
  const copy = document.createElement("button");
  copy.type = "button";
  copy.className = "copy-code";
  copy.textContent = "Copy";
  bar.append(label, copy);
  const pre = document.createElement("pre");
  const element = document.createElement("code");
  element.textContent = code;
  pre.append(element);
  figure.append(bar, pre);
  return figure;
}

// -- lists --------------------------------------------------------------------------------------

function itemMarker(line) {
  const match = ITEM.exec(line);
  if (!match || RULE.test(line)) return null; // "- - -" is a rule, not three items
  const [, lead, marker, gap = " ", text = ""] = match;
  const indent = indentOf(lead);
  const gapWidth = indentOf(gap);
  // Content lines up under the item's text; a gap of 5 or more is taken as one space.
  const content = indent + marker.length + (gapWidth > 4 || text === "" ? 1 : gapWidth);
  const ordered = /\d/.test(marker[0]);
  return { indent, content, ordered, number: ordered ? parseInt(marker, 10) : 1, text };
}

/** The items of the list that starts at lines[start]: {ordered, start, items: [[line…]…], end}. */
function readList(lines, start, depth) {
  const first = itemMarker(lines[start]);
  const items = [];
  let current = null;
  let item = first;
  let index = start;
  while (index < lines.length) {
    const line = lines[index];
    const marker = itemMarker(line);
    if (marker && marker.indent <= first.indent + 1) {
      if (marker.ordered !== first.ordered) break; // another kind of list begins
      item = marker;
      current = [marker.text];
      items.push(current);
      index += 1;
      continue;
    }
    if (isBlank(line)) {
      // Blank lines stay in the list only if it goes on after them.
      let next = index;
      while (next < lines.length && isBlank(lines[next])) next += 1;
      const after = next < lines.length ? itemMarker(lines[next]) : null;
      const sibling = after && after.indent <= first.indent + 1 && after.ordered === first.ordered;
      if (next === lines.length || (!sibling && indentOf(lines[next]) < item.content)) break;
      for (; index < next; index += 1) current.push("");
      continue;
    }
    const indent = indentOf(line);
    if (indent >= item.content || (marker && indent > first.indent)) {
      current.push(dedent(line, Math.min(indent, item.content))); // nested content
    } else if (!isBlank(lines[index - 1]) && !startsBlock(line, depth)) {
      current.push(line); // a paragraph's next line, not indented ("lazy")
    } else {
      break;
    }
    index += 1;
  }
  return { ordered: first.ordered, start: first.number, items, end: index };
}

function buildList(list, depth, budget) {
  const element = document.createElement(list.ordered ? "ol" : "ul");
  if (list.ordered && list.start !== 1) element.start = list.start;
  for (const lines of list.items) element.append(container("li", lines, depth + 1, budget));
  return element;
}

// -- tables -------------------------------------------------------------------------------------

// The line under a table's head: |---|:--:|, a cell for each of the head's. Cell by cell: one
// regular expression for the whole line would backtrack over a long run of spaces.
function isTableRule(line, head) {
  const rule = cells(line);
  return (
    line.includes("|") &&
    rule.length === cells(head).length &&
    rule.every((cell) => TABLE_RULE_CELL.test(cell))
  );
}

function cells(row) {
  const trimmed = row.trim().replace(/^\|/, "").replace(/(?<!\\)\|$/, "");
  return trimmed.split(/(?<!\\)\|/).slice(0, MAX_TABLE_COLUMNS);
}

function table(rows, budget) {
  const wrapper = document.createElement("div");
  wrapper.className = "table"; // scrolls sideways on its own, not the page
  const element = document.createElement("table");
  const head = element.createTHead().insertRow();
  for (const cell of cells(rows[0])) head.append(inlineElement("th", cell.trim(), budget));
  const body = element.createTBody();
  for (const row of rows.slice(2)) {
    const tr = body.insertRow();
    for (const cell of cells(row)) tr.append(inlineElement("td", cell.trim(), budget));
  }
  wrapper.append(element);
  return wrapper;
}

// -- inline -------------------------------------------------------------------------------------

function inlineElement(tag, text, budget) {
  const element = document.createElement(tag);
  appendInline(element, text, 0, budget, true);
  return element;
}

/** The http(s) URL `raw` names, or null: no other scheme ever becomes a link. */
export function safeUrl(raw) {
  if (raw.length > MAX_URL) return null;
  try {
    const url = new URL(raw);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null; // relative or malformed
  }
}

function link(href, parent) {
  const anchor = document.createElement("a");
  anchor.href = href;
  anchor.target = "_blank";
  anchor.rel = "noopener noreferrer nofollow";
  parent.append(anchor);
  return anchor;
}

// Where a run of exactly `length` times `char` closes an emphasis, searching from `from` (never
// inside the opener's own run): preceded by a non-space, and for "_" not followed by a letter
// or digit (snake_case stays text). -1 if nowhere. Every character looked at is charged.
function findCloser(text, char, length, from, budget) {
  const marker = char.repeat(length);
  let at = from;
  for (;;) {
    const found = text.indexOf(marker, at);
    if (found < 0) {
      budget.left -= text.length - at;
      return -1;
    }
    let end = found + length;
    while (text[end] === char) end += 1; // the whole run: a longer one is not this closer
    budget.left -= end - at;
    if (budget.left < 0) return -1;
    const after = text[end];
    const intraword = char === "_" && after !== undefined && /[\p{L}\p{N}]/u.test(after);
    if (end - found === length && !/\s/.test(text[found - 1]) && !intraword) return found;
    at = end;
  }
}

// Where the backtick run of exactly `length` that closes a code span is, or -1.
function findCodeCloser(text, length, from, budget) {
  const run = "`".repeat(length);
  let at = from;
  for (;;) {
    const found = text.indexOf(run, at);
    budget.left -= (found < 0 ? text.length : found + length) - at;
    if (found < 0 || budget.left < 0) return -1;
    let end = found + length;
    if (text[end] !== "`") return found;
    while (text[end] === "`") end += 1; // a longer run: not this one's closer
    at = end;
  }
}

// The "](url)" of a link whose "[" is at `open`: {textEnd, url, end} or null.
function findLink(text, open, budget) {
  let depth = 0;
  const limit = Math.min(text.length, open + MAX_LINK_TEXT);
  for (let index = open; index < limit; index += 1) {
    const char = text[index];
    if (char === "\\") index += 1;
    else if (char === "[") depth += 1;
    else if (char === "]" && --depth === 0) {
      budget.left -= index - open + MAX_URL;
      if (text[index + 1] !== "(") return null;
      const target = /^\(<?([^\s()<>]*(?:\([^\s()]*\)[^\s()<>]*)*)>?(?:\s+"[^"]*")?\)/.exec(
        text.slice(index + 1, index + 2 + MAX_URL + 200),
      );
      return target ? { textEnd: index, url: target[1], end: index + 1 + target[0].length } : null;
    }
  }
  budget.left -= limit - open;
  return null;
}

// A bare URL without the sentence's punctuation after it; a ")" stays if the URL opened one.
function bareUrl(url) {
  let open = 0;
  let close = 0;
  for (const char of url) {
    if (char === "(") open += 1;
    else if (char === ")") close += 1;
  }
  let end = url.length;
  while (end > 0 && ".,;:!?)]*_~".includes(url[end - 1])) {
    if (url[end - 1] === ")") {
      if (close <= open) break;
      close -= 1;
    }
    end -= 1;
  }
  return url.slice(0, end);
}

/** Appends the inline Markdown of `text` to `parent`, as elements and Text nodes only. */
function appendInline(parent, text, depth, budget, linksAllowed) {
  let plain = 0; // where the text not yet appended begins
  const failed = new Set(); // markers with no closer left in this text: not searched again
  const flush = (end) => {
    if (end > plain) parent.append(text.slice(plain, end));
  };
  let index = 0;
  while (index < text.length && budget.left > 0) {
    SPECIAL.lastIndex = index;
    const found = SPECIAL.exec(text);
    if (!found) break;
    index = found.index;
    const char = text[index];

    if (char === "\\") {
      if (PUNCTUATION.test(text[index + 1] ?? "")) {
        flush(index);
        parent.append(text[index + 1]);
        plain = index + 2;
      }
      index += 2;
    } else if (char === "`") {
      let run = 1;
      while (text[index + run] === "`") run += 1;
      const close = failed.has(`code${run}`) ? -1 : findCodeCloser(text, run, index + run, budget);
      if (close < 0) {
        failed.add(`code${run}`);
        index += run;
        continue;
      }
      flush(index);
      const code = document.createElement("code");
      let inner = text.slice(index + run, close);
      if (inner.length > 2 && inner.startsWith(" ") && inner.endsWith(" ") && inner.trim()) {
        inner = inner.slice(1, -1); // `` `x` `` shows `x`
      }
      code.textContent = inner;
      parent.append(code);
      index = close + run;
      plain = index;
    } else if (char === "*" || char === "_" || char === "~") {
      let run = 1;
      while (text[index + run] === char) run += 1;
      const content = index + run; // where the emphasised text would begin
      const opens =
        run <= 3 && // a longer run ("*****") is text
        content < text.length &&
        !/\s/.test(text[content]) &&
        !(char === "_" && index > 0 && /[\p{L}\p{N}]/u.test(text[index - 1])) &&
        (char !== "~" || run === 2) &&
        depth < MAX_INLINE_DEPTH;
      const marker = char + run;
      // The closer is a run of the same length: *** bold italic ***, ** bold **, * italic *, ~~ struck ~~.
      const close = opens && !failed.has(marker) ? findCloser(text, char, run, content + 1, budget) : -1;
      if (close < 0) {
        if (opens) failed.add(marker); // no closer after here: none after any later opener either
        index += run;
        continue;
      }
      flush(index);
      let target = parent;
      for (const tag of EMPHASIS[char][run]) target = target.appendChild(document.createElement(tag));
      appendInline(target, text.slice(content, close), depth + 1, budget, linksAllowed);
      index = close + run;
      plain = index;
    } else if (char === "[") {
      const found = linksAllowed && depth < MAX_INLINE_DEPTH ? findLink(text, index, budget) : null;
      if (!found) {
        index += 1;
        continue;
      }
      flush(index);
      const href = safeUrl(found.url);
      // A link to anything but http(s) (javascript:, data:, a relative path) keeps only its text.
      const target = href ? link(href, parent) : parent;
      appendInline(target, text.slice(index + 1, found.textEnd), depth + 1, budget, false);
      index = found.end;
      plain = index;
    } else {
      // A bare URL, where a word begins; trailing punctuation is the sentence's, not the URL's.
      BARE_URL.lastIndex = index;
      const url = bareUrl(BARE_URL.exec(text)?.[0] ?? "http://");
      const href = linksAllowed ? safeUrl(url) : null;
      if (href) {
        flush(index);
        link(href, parent).textContent = url;
        plain = index + url.length;
      }
      index += url.length;
    }
  }
  flush(text.length);
}
