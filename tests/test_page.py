"""The chat page in a real browser (Chromium, driven by Playwright), against the real server.

The browser is RELAY_BROWSER (default: Debian's /usr/bin/chromium; Playwright's own download is
not used). Without it the browser tests are skipped, or fail when RELAY_BROWSER_REQUIRED=1 (CI).
RELAY_UPDATE_SCREENSHOT=1 writes docs/chat-page.png; otherwise no test writes a tracked file.
"""

from __future__ import annotations

import functools
import http.server
import itertools
import json
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    Playwright,
    Request,
    Response,
    expect,
    sync_playwright,
)

from relay.page import STATIC
from tests.conftest import ACCESS_TOKEN, CLIENT_KEY, RelayFactory, assert_no_secret
from tests.fake_upstream import (
    FakeUpstream,
    Pause,
    Reply,
    Reset,
    chunk,
    error_reply,
    openai_stream,
    sse,
    tokenize,
)
from tests.relay_server import ROOT, RelayServer

BROWSER = os.environ.get("RELAY_BROWSER", "/usr/bin/chromium")
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOT = ROOT / "docs" / "chat-page.png"
VIEWPORTS: dict[str, dict[str, Any]] = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1280, "height": 800}},
}
NO_BROWSER = (
    f"the browser tests of tests/test_page.py need Chromium at {BROWSER}, which does not exist: "
    "install it (Debian: apt-get install chromium; .ci/run does) or set "
    "RELAY_BROWSER=/path/to/chromium"
)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # Module-scoped, so that without a browser every browser test reports the one reason.
    if not Path(BROWSER).exists():
        if os.environ.get("RELAY_BROWSER_REQUIRED") == "1":
            pytest.fail(f"RELAY_BROWSER_REQUIRED=1, but {NO_BROWSER}", pytrace=False)
        pytest.skip(f"{NO_BROWSER}; they are skipped")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    instance = playwright.chromium.launch(executable_path=BROWSER, args=BROWSER_ARGS)
    yield instance
    instance.close()


@pytest.fixture
def open_tab(browser: Browser) -> Iterator[Callable[..., Page]]:
    """`open_tab("phone" | "desktop", **context_options)`: a tab in a fresh context (own storage)."""
    contexts = []

    def make(size: str = "desktop", **options: Any) -> Page:
        context = browser.new_context(**{**VIEWPORTS[size], **options})
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 900, "height": 700})
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture(scope="module")
def other_origin() -> Iterator[str]:
    """The page's files served by a plain static server on another port: another origin."""
    handler = functools.partial(QuietFiles, directory=str(STATIC))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def send(page: Page, text: str) -> None:
    page.fill("#message", text)
    page.press("#message", "Enter")


def answer(page: Page) -> str:
    return page.locator(".turn.assistant .text").last.inner_text()


def set_setting(page: Page, name: str, value: str) -> None:
    page.click("#settings summary")
    page.fill(f"#{name}", value)
    page.click("#settings summary")


def wait_for_reply(page: Page, count: int) -> None:
    """Until the page has shown `count` finished replies (each gets its Copy button at the end)."""
    expect(page.locator(".turn.assistant .copy-reply")).to_have_count(count, timeout=10_000)


def problems_of(page: Page) -> list[str]:
    """Console errors and warnings, failed requests and error statuses the page sees from now on."""
    seen: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            seen.append(f"console {message.type}: {message.text}")

    def response(answer: Response) -> None:
        if answer.status >= 400:
            seen.append(f"{answer.status}: {answer.url}")

    page.on("console", console)
    page.on("pageerror", lambda error: seen.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: seen.append(f"failed: {request.url} {request.failure}"))
    page.on("response", response)
    return seen


def bodies_posted(page: Page) -> list[Any]:
    """The JSON bodies of the POSTs the page sends from now on."""
    sent: list[Any] = []

    def request(request: Request) -> None:
        if request.method == "POST":
            sent.append(request.post_data_json)

    page.on("request", request)
    return sent


# -- streaming, as before -------------------------------------------------------------------------


def test_a_message_streams_in(fake: FakeUpstream, relay: RelayServer, page: Page) -> None:
    tokens = ["Streaming", " arrives", " token", " by", " token", " in", " this", " page."]
    fake.replies["gpt-4o-mini"] = Reply(body=openai_stream(tokens, pace=0.15))
    page.goto(relay.url + "/")
    send(page, "Hello")

    seen: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = answer(page)
        if not seen or text != seen[-1]:
            seen.append(text)
        if text == "".join(tokens):
            break
        time.sleep(0.03)
    growing = [text for text in seen if text]
    assert growing[-1] == "".join(tokens)
    assert len(growing) >= 4, growing  # it grew step by step, not all at once
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(growing))
    expect(page.locator(".turn.assistant .meta").last).to_have_text("Assistant · gpt-fake-0613")
    expect(page.locator("#send")).to_be_enabled()
    expect(page.locator("#stop")).to_be_disabled()


def test_waiting_state_then_context_on_the_next_turn(
    fake: FakeUpstream, relay: RelayServer, page: Page
) -> None:
    fake.replies["gpt-4o-mini"] = Reply(body=[Pause(3.0), *openai_stream(["First", " answer"])])
    page.goto(relay.url + "/")
    send(page, "First question")
    expect(page.locator(".turn.assistant .text.waiting")).to_have_count(1)
    expect(page.locator("#status")).to_have_text("Waiting for the first token…")
    expect(page.locator("#stop")).to_be_enabled()
    expect(page.locator(".turn.assistant .text").last).to_have_text("First answer", timeout=8000)
    expect(page.locator(".text.waiting")).to_have_count(0)

    fake.replies["gpt-4o-mini"] = Reply(body=openai_stream(["Second"]))
    page.fill("#message", "line one")
    page.press("#message", "Shift+Enter")  # a new line, not a send
    page.type("#message", "line two")
    page.press("#message", "Enter")
    expect(page.locator(".turn.assistant .text").last).to_have_text("Second")
    assert page.locator(".turn.user .text").last.inner_text() == "line one\nline two"
    assert fake.requests[-1].json["messages"] == [
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": "First answer"},
        {"role": "user", "content": "line one\nline two"},
    ]


def test_from_another_allowed_origin(
    fake: FakeUpstream, relay_factory: RelayFactory, other_origin: str, page: Page
) -> None:
    relay = relay_factory(ALLOWED_ORIGINS=other_origin)
    fake.replies["gpt-4o-mini"] = Reply(body=openai_stream(["Cross", "-origin", " works"]))
    page.goto(other_origin + "/index.html")
    set_setting(page, "url", relay.url)
    send(page, "Hi")
    expect(page.locator(".turn.assistant .text").last).to_have_text("Cross-origin works")
    assert fake.requests[0].headers.get("origin") is None  # the relay, not the browser, calls upstream


def test_from_an_origin_that_is_not_allowed(
    fake: FakeUpstream, relay_factory: RelayFactory, other_origin: str, page: Page
) -> None:
    relay = relay_factory(ALLOWED_ORIGINS="https://chat.example.com")
    page.goto(other_origin + "/index.html")
    set_setting(page, "url", relay.url)
    send(page, "Hi")
    error = page.locator(".turn.assistant.error .text").last
    expect(error).to_contain_text(f"Could not reach the relay at {relay.url}/api/chat")
    expect(error).to_contain_text(f"does not allow this page's origin ({other_origin})")
    expect(error).to_contain_text("ALLOWED_ORIGINS")
    assert fake.requests == []
    expect(page.locator("#message")).to_have_value("Hi")  # the question is back, to try again


def test_stop_mid_stream_keeps_the_partial_answer_and_frees_the_upstream(
    fake: FakeUpstream, relay: RelayServer, page: Page
) -> None:
    fake.replies["gpt-4o-mini"] = Reply(body=openai_stream([f" word{i}" for i in range(200)], pace=0.1))
    page.goto(relay.url + "/")
    send(page, "Talk for a while")
    expect(page.locator(".turn.assistant .text").last).to_contain_text("word3", timeout=5000)
    page.click("#stop")
    stopped_at = time.monotonic()
    partial = answer(page)
    time.sleep(1.0)
    assert answer(page) == partial  # it stopped growing
    assert partial.startswith(" word0 word1 word2 word3")
    expect(page.locator("#status")).to_have_text("Stopped. The partial answer is kept.")
    assert fake.wait_for(lambda: fake.requests[0].client_closed is not None, timeout=2)
    closed = fake.requests[0].client_closed
    assert closed is not None and closed - stopped_at < 2


# -- the newest text stays in view (issue 15, 1) -------------------------------------------------

# Where the newest text of the last reply is: the last line box of its last piece of text (or,
# before any text, the reply's box with its "Waiting…"; for an error, its error line), whether
# that is inside the window, and what the browser finds on top of it there.
NEWEST_TEXT = """() => {
  const turns = document.querySelectorAll(".turn.assistant");
  const turn = turns[turns.length - 1];
  const text = turn.querySelector(".text");
  let target = turn.querySelector(".error-line");
  let rect;
  if (target) {
    rect = target.getBoundingClientRect();
  } else {
    const walker = document.createTreeWalker(text, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) if (node.data.trim()) target = node;
    if (target) {
      const range = document.createRange();
      range.selectNodeContents(target);
      const lines = range.getClientRects();
      rect = lines[lines.length - 1];
    } else {
      rect = text.getBoundingClientRect();
    }
  }
  const x = (rect.left + rect.right) / 2;
  const y = (rect.top + rect.bottom) / 2;
  const onTop = document.elementFromPoint(x, y);
  return {
    top: rect.top,
    bottom: rect.bottom,
    height: rect.height,
    window: window.innerHeight,
    onTop: onTop ? onTop.tagName + "#" + onTop.id + "." + onTop.className : null,
    inTurn: turn.contains(onTop),
    text: target && target.data ? target.data.slice(-40) : text.className,
  };
}"""


def assert_newest_text_in_view(page: Page) -> dict[str, Any]:
    where: dict[str, Any] = page.evaluate(NEWEST_TEXT)
    assert where["height"] > 0, where
    assert where["top"] >= 0 and where["bottom"] <= where["window"], where  # inside the window
    assert where["inTurn"], where  # not under the composer (or anything else)
    return where


LONG_REPLY = "\n\n".join(f"Paragraph {i}: enough words to fill a line of the page or two." for i in range(40))


def long_conversation(page: Page, fake: FakeUpstream) -> None:
    """A conversation several windows tall, finished."""
    fake.replies["gpt-4o-mini"] = Reply(body=openai_stream(tokenize(LONG_REPLY)))
    send(page, "Tell me a long story")
    wait_for_reply(page, 1)
    assert page.evaluate("document.documentElement.scrollHeight > 2 * window.innerHeight")


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_the_streaming_reply_stays_in_view_unless_the_reader_scrolls_up(
    fake: FakeUpstream, relay: RelayServer, open_tab: Callable[..., Page], size: str
) -> None:
    tab = open_tab(size)
    tab.goto(relay.url + "/")
    long_conversation(tab, fake)
    lines = [f"Line {i} of the streaming reply.\n\n" for i in range(45)]
    fake.replies["gpt-4o-mini"] = Reply(body=[Pause(1.0), *openai_stream(lines, pace=0.1)])
    send(tab, "And now slowly")

    expect(tab.locator(".turn.assistant .text.waiting")).to_have_count(1)
    assert assert_newest_text_in_view(tab)["text"] == "text waiting"  # the placeholder shows

    seen = set()
    expect(tab.locator(".turn.assistant .text").last).to_contain_text("Line 3 ", timeout=5000)
    for _ in range(8):  # while it streams, the newest line is always the one in view
        seen.add(assert_newest_text_in_view(tab)["text"])
        time.sleep(0.1)
    assert len(seen) >= 4, seen

    # The reader scrolls up to read: the page stays there, and offers the way back.
    viewport = tab.viewport_size
    assert viewport is not None
    tab.mouse.move(viewport["width"] / 2, viewport["height"] / 3)
    tab.mouse.wheel(0, -500)
    expect(tab.locator("#jump")).to_be_visible()
    time.sleep(0.2)
    scrolled_to = tab.evaluate("window.scrollY")
    before = answer(tab)
    time.sleep(1.0)
    assert answer(tab) != before  # still streaming…
    assert tab.evaluate("window.scrollY") == scrolled_to  # …and the page did not move
    out_of_view = tab.evaluate(NEWEST_TEXT)
    assert out_of_view["bottom"] > out_of_view["window"] or not out_of_view["inTurn"], out_of_view

    tab.click("#jump")
    expect(tab.locator("#jump")).to_be_hidden()
    assert_newest_text_in_view(tab)
    time.sleep(0.4)
    assert_newest_text_in_view(tab)  # following again as it grows
    wait_for_reply(tab, 2)
    assert assert_newest_text_in_view(tab)["text"].startswith("Line 44 of the streaming reply.")


# -- no console error (issue 15, 2) --------------------------------------------------------------


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_no_console_error_or_failed_request(
    fake: FakeUpstream, relay: RelayServer, open_tab: Callable[..., Page], size: str
) -> None:
    tab = open_tab(size)
    problems = problems_of(tab)
    tab.goto(relay.url + "/")
    tab.wait_for_load_state("networkidle")
    fake.replies["gpt-4o-mini"] = Reply(body=openai_stream(tokenize(MARKDOWN_REPLY), pace=0.01))
    send(tab, "Show me everything")
    wait_for_reply(tab, 1)
    tab.wait_for_load_state("networkidle")
    assert problems == []
    # The page's own icon, not /favicon.ico (which functions-framework answers with a 404).
    icon = tab.evaluate("document.querySelector('link[rel=icon]').href")
    assert icon == relay.url + "/icon.svg"
    with httpx.Client() as http:
        served = http.get(icon)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/svg+xml"
    assert served.content.startswith(b"<svg")


# -- errors that read well (issue 15, 3 and 4) ---------------------------------------------------

RATE_LIMIT = {
    "error": {
        "message": "Rate limit reached for gpt-4o-mini in organization org-x on requests per min. Please try again in 20s.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}


def test_an_upstream_error_reads_as_one_line_with_the_details_a_click_away(
    fake: FakeUpstream, relay: RelayServer, open_tab: Callable[..., Page]
) -> None:
    tab = open_tab("phone")
    tab.goto(relay.url + "/")
    long_conversation(tab, fake)
    fake.replies["gpt-4o-mini"] = error_reply(429, json.dumps(RATE_LIMIT).encode())
    send(tab, "Again")
    error = tab.locator(".turn.assistant.error").last
    line = error.locator(".error-line")
    expect(line).to_have_text(f"HTTP 429 {RATE_LIMIT['error']['message']}")
    assert_newest_text_in_view(tab)  # the error shows above the composer, not under it
    visible = error.inner_text()
    assert visible.count("429") == 1, visible  # the status once
    assert "{" not in visible and "TOO MANY" not in visible, visible
    details = error.locator("details pre")
    expect(details).to_be_hidden()
    error.locator("details summary").click()
    expect(details).to_be_visible()
    expect(details).to_have_text(
        "OpenAI API error: 429 Too Many Requests " + json.dumps(RATE_LIMIT, separators=(",", ":"))
    )
    expect(tab.locator("#message")).to_have_value("Again")  # the question is back, to try again


@pytest.mark.parametrize(
    ("status", "body", "config", "line", "hint"),
    [
        pytest.param(
            429,
            'OpenAI API error: 429 Too Many Requests {"error":{"message":"Slow down."}}',
            None,
            "Slow down.",
            "",
            id="upstream-message",
        ),
        pytest.param(
            400,
            'OpenAI API error: 400 Bad Request {"error":"a plain string"}',
            None,
            "a plain string",
            "",
            id="error-as-string",
        ),
        pytest.param(
            599, "OpenAI API error: 599  {}", None, "The model's provider answered 599.", "", id="no-reason"
        ),
        pytest.param(
            502,
            "OpenAI API error: 302 Found {} (unexpected status from the upstream; check OPENAI_BASE_URL)",
            None,
            "The model's provider answered 302 Found. (unexpected status from the upstream; check OPENAI_BASE_URL)",
            "",
            id="unexpected-status",
        ),
        pytest.param(
            502,
            "OpenAI API error: could not connect to api.openai.com: connection refused.",
            None,
            "OpenAI API error: could not connect to api.openai.com: connection refused.",
            "",
            id="relays-own",
        ),
        pytest.param(
            401,
            'Unauthorized: the access token sent is not valid for this relay. Send the header "Authorization: Bearer <token>" with one of the access tokens its owner set in ACCESS_TOKENS.',
            None,
            "Unauthorized: the access token sent is not valid for this relay.",
            "Paste an access token under Settings (the relay's owner can give you one).",
            id="bad-token",
        ),
        pytest.param(
            400,
            'This relay does not accept your own API key: remove "apiKey" from the request (its owner set ALLOW_CLIENT_KEYS=false).',
            None,
            "This relay does not accept your own OpenAI API key.",
            "Clear the OpenAI API key under Settings to use the relay's own.",
            id="key-refused",
        ),
        pytest.param(
            400,
            "Error: missing OpenAI API Key. Add it on the client side (Settings icon) or server side (your deployment).",
            {"clientKeys": False, "accessTokens": False},
            "This relay has no OpenAI API key of its own.",
            "It does not accept your own key either: ask the relay's owner to set one.",
            id="no-key-anywhere",
        ),
        pytest.param(500, "", None, "The relay answered without a message.", "", id="empty"),
    ],
)
def test_how_errors_read(
    relay: RelayServer,
    page: Page,
    status: int,
    body: str,
    config: dict[str, bool] | None,
    line: str,
    hint: str,
) -> None:
    page.goto(relay.url + "/")
    explained = page.evaluate(
        """async ([status, body, config]) => {
          const { explainHttpError } = await import("/errors.js");
          return explainHttpError(status, body, config);
        }""",
        [status, body, config],
    )
    assert (explained["line"], explained["hint"]) == (line, hint)
    assert explained["details"] == (body if body != line else "")  # the whole answer, when it says more


def test_an_upstream_error_without_a_message_says_what_the_status_was(
    fake: FakeUpstream, relay: RelayServer, page: Page
) -> None:
    fake.replies["gpt-4o-mini"] = error_reply(503, b"upstream overloaded", content_type="text/plain")
    page.goto(relay.url + "/")
    send(page, "Hi")
    error = page.locator(".turn.assistant.error").last
    expect(error.locator(".error-line")).to_have_text(
        "HTTP 503 The model's provider answered 503 Service Unavailable."
    )
    expect(error.locator("details pre")).to_have_text("OpenAI API error: 503 Service Unavailable {}")


def test_the_relays_own_message_is_shown_as_it_is(relay_factory: RelayFactory, page: Page) -> None:
    relay = relay_factory(ALLOWED_MODELS="gpt-other")
    page.goto(relay.url + "/")
    send(page, "Hi")
    error = page.locator(".turn.assistant.error").last
    with httpx.Client() as http:
        body = http.post(
            relay.url + "/api/chat",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]},
        ).text
    assert "ALLOWED_MODELS" in body
    expect(error.locator(".error-line")).to_have_text(f"HTTP 400 {body}")
    expect(error.locator("details")).to_have_count(0)  # nothing more to show


def test_an_error_after_the_reply_began_is_shown_below_it(
    fake: FakeUpstream, relay: RelayServer, page: Page
) -> None:
    fake.replies["gpt-4o-mini"] = Reply(
        body=[*openai_stream(["**Half**", " an answer"], done=False)[:-1], Reset()]
    )
    page.goto(relay.url + "/")
    send(page, "Hi")
    turn = page.locator(".turn.assistant").last
    expect(turn.locator(".error-line")).to_have_text(
        "The reply broke off: the upstream closed the connection before the reply was complete"
    )
    expect(turn.locator(".text strong")).to_have_text("Half")  # the part that came is kept, rendered
    assert "[Error" not in turn.inner_text()

    fake.replies["gpt-4o-mini"] = Reply(body=openai_stream(["Fine"]))
    send(page, "Go on")
    wait_for_reply(page, 2)
    assert fake.requests[-1].json["messages"][1] == {"role": "assistant", "content": "**Half** an answer"}


def test_access_token(fake: FakeUpstream, relay_factory: RelayFactory, page: Page) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN)
    fake.replies["gpt-4o-mini"] = Reply(body=openai_stream(["With", " the", " token"]))
    page.goto(relay.url + "/")
    expect(page.locator("#empty")).to_contain_text(
        "This relay needs an access token: paste it under Settings"
    )
    send(page, "Hi")
    error = page.locator(".turn.assistant.error .text").last
    expect(error).to_contain_text("HTTP 401")
    expect(error).to_contain_text("this relay needs an access token")
    # What to do, on this page (the relay's "Send the header …" is for other callers).
    expect(error.locator(".hint")).to_have_text(
        "Paste an access token under Settings (the relay's owner can give you one)."
    )
    expect(error.locator(".error-line")).not_to_contain_text("Send the header")
    assert fake.requests == []

    set_setting(page, "token", ACCESS_TOKEN)
    page.press("#message", "Enter")  # the question came back to the box
    expect(page.locator(".turn.assistant .text").last).to_have_text("With the token")
    assert ACCESS_TOKEN not in page.url
    page.reload()  # remembered in this browser
    page.click("#settings summary")
    expect(page.locator("#token")).to_have_value(ACCESS_TOKEN)


def test_own_api_key_when_the_relay_has_none(
    fake: FakeUpstream, relay_factory: RelayFactory, page: Page
) -> None:
    relay = relay_factory(OPENAI_API_KEY=None)
    fake.replies["gpt-4o-mini"] = Reply(body=openai_stream(["Paid", " by", " you"]))
    sent = bodies_posted(page)
    page.goto(relay.url + "/")
    send(page, "Hi")
    error = page.locator(".turn.assistant.error").last
    expect(error.locator(".error-line")).to_have_text("HTTP 400 This relay has no OpenAI API key of its own.")
    expect(error.locator(".hint")).to_have_text(
        "Paste your OpenAI API key under Settings, or ask the relay's owner to set one."
    )
    # The 2023 client's words stay in the relay's answer, one click away.
    expect(error.locator("details pre")).to_have_text(
        "Error: missing OpenAI API Key. Add it on the client side (Settings icon) or server side (your deployment)."
    )
    assert fake.requests == []

    page.click("#settings summary")
    expect(page.locator("#token-field")).to_be_hidden()  # this relay uses no access tokens
    page.fill("#apiKey", CLIENT_KEY)
    page.click("#settings summary")
    page.press("#message", "Enter")
    expect(page.locator(".turn.assistant .text").last).to_have_text("Paid by you")
    assert sent[-1]["apiKey"] == CLIENT_KEY
    assert fake.requests[-1].headers["authorization"] == f"Bearer {CLIENT_KEY}"
    page.reload()
    page.click("#settings summary")
    expect(page.locator("#apiKey")).to_have_value(CLIENT_KEY)


def test_no_key_field_where_the_relay_refuses_client_keys(
    fake: FakeUpstream, relay_factory: RelayFactory, page: Page
) -> None:
    relay = relay_factory(OPENAI_API_KEY=None, ALLOW_CLIENT_KEYS="false")
    sent = bodies_posted(page)
    page.goto(relay.url + "/")
    # A key kept from before (say the owner changed the setting since) is not offered, nor sent.
    page.evaluate(f"localStorage.setItem('relay.apiKey', {json.dumps(CLIENT_KEY)})")
    page.reload()
    page.click("#settings summary")
    expect(page.locator("#key-refused")).to_have_text(
        "This relay uses its own OpenAI API key; it does not accept yours."
    )
    expect(page.locator("#api-key-field")).to_be_hidden()
    page.click("#settings summary")
    send(page, "Hi")
    error = page.locator(".turn.assistant.error").last
    expect(error.locator(".error-line")).to_have_text("HTTP 400 This relay has no OpenAI API key of its own.")
    expect(error.locator(".hint")).to_have_text(
        "It does not accept your own key either: ask the relay's owner to set one."
    )
    assert sent and "apiKey" not in sent[-1]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        pytest.param({}, {"clientKeys": True, "accessTokens": False}, id="defaults"),
        pytest.param(
            {"ACCESS_TOKENS": ACCESS_TOKEN}, {"clientKeys": True, "accessTokens": True}, id="tokens"
        ),
        pytest.param(
            {"ALLOW_CLIENT_KEYS": "false", "OPENAI_API_KEY": None},
            {"clientKeys": False, "accessTokens": False},
            id="no-client-keys",
        ),
    ],
)
def test_page_config_says_what_the_page_may_offer_and_nothing_secret(
    relay_factory: RelayFactory, settings: dict[str, str | None], expected: dict[str, bool]
) -> None:
    relay = relay_factory(**settings)
    with httpx.Client() as http:
        response = http.get(relay.url + "/page-config.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == expected
    assert_no_secret(response.content + repr(response.headers.raw).encode(), "/page-config.json")


# -- Markdown (issue 15, 5) ----------------------------------------------------------------------

MARKDOWN_REPLY = """### Plan

Some **bold**, some *italic*, `x = 1` inline, ~~gone~~ and a snake_case_name.
A second line of the same paragraph.

1. First step
   - nested one
   - nested two
2. Second step

3. Third step, after a blank line

Later:

7. Seventh, on its own

- a bullet with a [link to the docs](https://example.com/docs) and https://example.org/page.

```python
def hello():
    return "<b>not bold</b>"
```

| Name | Value |
|------|-------|
| a    | `1`   |

> Quoted text
"""
CODE = 'def hello():\n    return "<b>not bold</b>"'


def test_markdown_is_rendered_as_it_streams(fake: FakeUpstream, relay: RelayServer, page: Page) -> None:
    fake.replies["gpt-4o-mini"] = Reply(
        body=openai_stream(
            ["### Plan\n\n", *tokenize(MARKDOWN_REPLY.removeprefix("### Plan\n\n"))], pace=0.02
        )
    )
    page.goto(relay.url + "/")
    send(page, "Markdown please")
    text = page.locator(".turn.assistant .text").last
    expect(text.locator("h4")).to_have_text("Plan")  # ### under the page's h1
    text.locator("h4").evaluate("heading => heading.dataset.first = 'yes'")  # built once, kept while it grows
    wait_for_reply(page, 1)
    expect(text.locator("h4[data-first=yes]")).to_have_count(1)

    expect(text.locator("p strong")).to_have_text("bold")
    expect(text.locator("p em")).to_have_text("italic")
    expect(text.locator("p > code")).to_have_text("x = 1")
    expect(text.locator("p del")).to_have_text("gone")
    assert "snake_case_name" in text.locator("p").first.inner_text()
    assert text.locator("p").first.inner_text().endswith("\nA second line of the same paragraph.")
    expect(text.locator("ol").first.locator("> li")).to_have_count(3)  # a blank line does not end it
    expect(text.locator("ol > li").first.locator("ul > li")).to_have_text(["nested one", "nested two"])
    expect(text.locator("ol").last).to_have_attribute("start", "7")
    expect(text.locator("a[href='https://example.com/docs']")).to_have_text("link to the docs")
    expect(text.locator("a[href='https://example.org/page']")).to_have_text("https://example.org/page")
    assert text.locator("a").evaluate_all(
        "links => links.every(a => a.rel.includes('noopener') && a.target === '_blank')"
    )
    expect(text.locator(".code .code-bar span")).to_have_text("python")
    expect(text.locator(".code pre code")).to_have_text(CODE)
    expect(text.locator(".code b")).to_have_count(0)
    expect(text.locator("table th")).to_have_text(["Name", "Value"])
    expect(text.locator("table td code")).to_have_text("1")
    expect(text.locator("blockquote")).to_have_text("Quoted text")


@pytest.mark.parametrize(
    ("source", "html"),
    [
        pytest.param(
            "```inline``` code\nand more", "<p><code>inline</code> code\nand more</p>", id="inline-fence"
        ),
        pytest.param("a | b\n---", "<p>a | b</p><hr>", id="pipe-then-rule"),
        pytest.param(
            "| a | b |\n|---|:-:|\n| 1 | 2 |",
            '<div class="table"><table><thead><tr><th>a</th><th>b</th></tr></thead>'
            "<tbody><tr><td>1</td><td>2</td></tr></tbody></table></div>",
            id="table",
        ),
        pytest.param(
            "snake_case_word and _emph_", "<p>snake_case_word and <em>emph</em></p>", id="underscores"
        ),
        pytest.param(
            "\\*not em\\* but ***both***", "<p>*not em* but <strong><em>both</em></strong></p>", id="escapes"
        ),
        pytest.param("`` a`b ``", "<p><code>a`b</code></p>", id="code-with-backtick"),
        pytest.param(
            "see https://example.com/a_(b).",
            '<p>see <a href="https://example.com/a_(b)" target="_blank" rel="noopener noreferrer nofollow">'
            "https://example.com/a_(b)</a>.</p>",
            id="bare-url-with-parens",
        ),
        pytest.param(
            "~~~\n<b>x</b>\n~~~",
            '<div class="code"><div class="code-bar"><span></span>'
            '<button type="button" class="copy-code">Copy</button></div><pre><code>&lt;b&gt;x&lt;/b&gt;</code></pre></div>',
            id="tilde-fence",
        ),
        pytest.param(
            "- a\n\n  more of a\n- b",
            "<ul><li><p>a</p><p>more of a</p></li><li><p>b</p></li></ul>",
            id="loose-item",
        ),
        pytest.param(
            "> quote\ncontinued", "<blockquote><p>quote\ncontinued</p></blockquote>", id="lazy-quote"
        ),
        pytest.param("## Title ##", "<h3>Title</h3>", id="closing-hashes"),
    ],
)
def test_markdown_edge_cases(relay: RelayServer, page: Page, source: str, html: str) -> None:
    page.goto(relay.url + "/")
    rendered = page.evaluate(
        """async (source) => {
          const { renderMarkdown } = await import("/markdown.js");
          const box = document.createElement("div");
          box.append(renderMarkdown(source));
          return box.innerHTML;  // read by the test only: the page never sets it
        }""",
        source,
    )
    assert rendered == html


HOSTILE = """<img src=x onerror="alert('img')"> and <script>alert('script')</script>

[click me](javascript:alert('js')) and [data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)
[tagged](data:text/html,<script>alert('data')</script>)
[vb](vbscript:msgbox) [rel](/relative) [ok](https://example.com/ok)

<iframe src="javascript:alert('iframe')"></iframe> **<svg onload=alert('svg')>**

- <a href="javascript:alert('a')">raw anchor</a>
  - `<img src=x onerror=alert('code')>`

```html
<script>alert('fence')</script>
"""


def test_hostile_markdown_stays_text(fake: FakeUpstream, relay: RelayServer, page: Page) -> None:
    dialogs: list[str] = []

    def dialog(opened: Dialog) -> None:
        dialogs.append(opened.message)
        opened.dismiss()

    page.on("dialog", dialog)
    problems = problems_of(page)
    fake.replies["gpt-4o-mini"] = Reply(body=openai_stream(tokenize(HOSTILE), pace=0.005))
    page.goto(relay.url + "/")
    send(page, "Try to break out")
    wait_for_reply(page, 1)
    text = page.locator(".turn.assistant .text").last
    for tag in ("img", "script", "iframe", "svg", "object", "embed", "style"):
        expect(text.locator(tag)).to_have_count(0)
    hrefs = text.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hrefs == ["https://example.com/ok"]
    assert page.evaluate(
        "[...document.querySelectorAll('*')].every(el => [...el.attributes].every(a => !a.name.startsWith('on')))"
    )
    shown = text.inner_text()
    for literal in (
        "<img src=x onerror=",
        "<script>alert('script')</script>",
        "<iframe src=",
        "<svg onload=",
    ):
        assert literal in shown
    assert "click me and data" in shown  # an unsafe link keeps its text, not its target
    expect(text.locator(".code code")).to_have_text(
        "<script>alert('fence')</script>\n"
    )  # unclosed: to the end
    page.wait_for_timeout(300)
    assert dialogs == []
    assert problems == []


def test_the_users_own_message_is_text_never_html(fake: FakeUpstream, relay: RelayServer, page: Page) -> None:
    # Pasted markup, a link and a script: shown as typed, in the turn and after a reload.
    dialogs: list[str] = []

    def dialog(opened: Dialog) -> None:
        dialogs.append(opened.message)
        opened.dismiss()

    page.on("dialog", dialog)
    fake.replies["gpt-4o-mini"] = Reply(body=openai_stream(["ok"]))
    typed = "<img src=x onerror=alert(1)> <b>bold</b> <script>alert(2)</script> [a](javascript:alert(3))"
    page.goto(relay.url + "/")
    send(page, typed)
    wait_for_reply(page, 1)
    for shown in (page, None):
        if shown is None:
            page.reload()
            wait_for_reply(page, 1)
        mine = page.locator(".turn.user .text").last
        assert mine.inner_text() == typed
        assert mine.evaluate("node => node.children.length") == 0  # no element: text only
    page.wait_for_timeout(300)
    assert dialogs == []


# Each case is rendered in the page; none may take long, whatever its size.
BOUNDED_WORK = """async () => {
  const { renderMarkdown } = await import("/markdown.js");
  const cases = {
    "10,000 nested bullets": "- ".repeat(10000) + "x",
    "10,000 nested numbers": "1. ".repeat(10000) + "x",
    "a staircase of 3,000 lists": Array.from({ length: 3000 }, (_, i) => " ".repeat(2 * (i % 200)) + "- item").join("\\n"),
    "10,000 quotes": ">".repeat(10000) + " x",
    "100,000 stars": "*".repeat(100000) + "x",
    "50,000 unclosed emphasis": "*a ".repeat(50000),
    "50,000 unclosed underscores": "_a ".repeat(50000),
    "50,000 unclosed strikes": "~~a ".repeat(50000),
    "backtick runs of every length": Array.from({ length: 400 }, (_, i) => "`".repeat(i + 1)).join(" a "),
    "20,000 open brackets": "[".repeat(20000) + "x](https://a.example)",
    "20,000 unfinished links": "[a](".repeat(20000),
    "a URL with 100,000 closing parens": "https://example.com/" + "a".repeat(100000) + ")".repeat(100000),
    "a heading of spaces": "# a" + " ".repeat(200000) + "x",
    "a padded code span": "` " + "a".repeat(200000) + "`",
    "5,000 fences": "```\\n".repeat(5000),
    "an unclosed fence of 20,000 lines": "```js\\n" + "let x = 1;\\n".repeat(20000),
    "50,000 blank lines in a list": "- a" + "\\n".repeat(50000) + "  b",
    "a table 10,000 columns wide": "|" + "a|".repeat(10000) + "\\n|" + "-|".repeat(10000),
    "a line of 1,000,000 characters": "word ".repeat(200000),
    "emphasis nested 10,000 deep": "**_".repeat(10000) + "x" + "_**".repeat(10000),
    "100,000 spaces before a word": " ".repeat(100000) + "x",
    "a table rule gone wrong": "a|b\\n|" + "-".repeat(50000) + " ".repeat(200000) + "x",
    "a table rule of spaced dashes": "a|b\\n" + "- ".repeat(50000) + "x",
    "a closing fence gone wrong": "```\\n" + "`".repeat(100000) + " x",
    "an opening fence gone wrong": "`".repeat(100000) + "x`",
    "a row of escaped pipes": "a|b\\n|-|-|\\n" + "\\\\|".repeat(50000),
    "a rule gone wrong": "*" + " ".repeat(100000) + "*x",
  };
  const results = {};
  for (const [name, source] of Object.entries(cases)) {
    const started = performance.now();
    const box = document.createElement("div");
    box.append(renderMarkdown(source));
    let depth = 0;
    for (const node of box.querySelectorAll("ul, ol, blockquote, strong, em")) {
      let level = 0;
      for (let up = node; up !== box; up = up.parentElement) level += 1;
      depth = Math.max(depth, level);
    }
    results[name] = { ms: performance.now() - started, depth, length: box.textContent.length, source: source.length };
  }
  return results;
}"""


def test_markdown_work_is_bounded(relay: RelayServer, page: Page) -> None:
    page.goto(relay.url + "/")
    results = page.evaluate(BOUNDED_WORK)
    slow = {name: result for name, result in results.items() if result["ms"] > 1500}
    assert slow == {}, slow
    for name, result in results.items():
        assert result["depth"] <= 20, (name, result)  # nesting stops at a fixed depth
        assert result["length"] > 0, (name, result)  # and the text is still shown
    assert results["100,000 stars"]["length"] == 100_001
    assert results["a line of 1,000,000 characters"]["length"] == 1_000_000


def test_markdown_rebuilds_only_the_blocks_that_changed(relay: RelayServer, page: Page) -> None:
    page.goto(relay.url + "/")
    kept = page.evaluate("""async () => {
      const { MarkdownView } = await import("/markdown.js");
      const box = document.createElement("div");
      const view = new MarkdownView(box);
      view.show("# Title\\n\\nFirst paragraph.\\n\\n- one\\n- tw");
      const before = [...box.children];
      view.show("# Title\\n\\nFirst paragraph.\\n\\n- one\\n- two\\n\\nMore");
      const after = [...box.children];
      return { same: after.map((node, i) => node === before[i]), tags: after.map((node) => node.tagName),
               list: after[2].textContent };
    }""")
    assert kept == {"same": [True, True, False, False], "tags": ["H2", "P", "UL", "P"], "list": "onetwo"}


# -- the conversation across a reload, New chat, Copy (issue 15, 6) ------------------------------


def test_the_conversation_survives_a_reload_until_new_chat(
    fake: FakeUpstream, relay: RelayServer, page: Page
) -> None:
    page.goto(relay.url + "/")
    fake.replies["gpt-4o-mini"] = Reply(body=openai_stream(["**One**"]))
    send(page, "First")
    wait_for_reply(page, 1)
    fake.replies["gpt-4o-mini"] = Reply(body=openai_stream(["- two\n- three"]))
    send(page, "Second")
    wait_for_reply(page, 2)

    page.reload()
    expect(page.locator(".turn .text")).to_have_text(["First", "One", "Second", "twothree"])
    expect(page.locator(".turn.assistant .text strong")).to_have_text("One")  # rendered again
    expect(page.locator(".turn.assistant .meta")).to_have_text(["Assistant · gpt-fake-0613"] * 2)
    expect(page.locator("#empty")).to_be_hidden()
    fake.replies["gpt-4o-mini"] = Reply(body=openai_stream(["Four"]))
    send(page, "Third")
    wait_for_reply(page, 3)
    assert fake.requests[-1].json["messages"] == [
        {"role": "user", "content": "First"},
        {"role": "assistant", "content": "**One**"},
        {"role": "user", "content": "Second"},
        {"role": "assistant", "content": "- two\n- three"},
        {"role": "user", "content": "Third"},
    ]

    page.click("#new-chat")
    expect(page.locator(".turn")).to_have_count(0)
    expect(page.locator("#empty")).to_be_visible()
    page.reload()
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator(".turn")).to_have_count(0)
    send(page, "Afresh")
    wait_for_reply(page, 1)
    assert fake.requests[-1].json["messages"] == [{"role": "user", "content": "Afresh"}]


def test_copy_a_reply_or_its_code(
    fake: FakeUpstream, relay: RelayServer, open_tab: Callable[..., Page]
) -> None:
    tab = open_tab("desktop", permissions=["clipboard-read", "clipboard-write"])
    fake.replies["gpt-4o-mini"] = Reply(body=openai_stream(tokenize(MARKDOWN_REPLY)))
    tab.goto(relay.url + "/")
    send(tab, "Markdown please")
    wait_for_reply(tab, 1)
    tab.click(".copy-reply")
    expect(tab.locator(".copy-reply")).to_have_text("Copied")
    assert tab.evaluate("navigator.clipboard.readText()") == MARKDOWN_REPLY  # the Markdown, as written
    tab.click(".copy-code")
    expect(tab.locator(".copy-code")).to_have_text("Copied")
    assert tab.evaluate("navigator.clipboard.readText()") == CODE


# -- characters split across reads, as before ----------------------------------------------------

SPLIT_TEXT = "Emoji 👩‍💻🎉 and 中文字符 and Ελληνικά ✓"


class SplitWritesRelay(http.server.BaseHTTPRequestHandler):
    """Serves the page, and answers /api/chat with every character cut between two network writes.

    The real relay only ever writes whole characters; this stand-in checks the page's side:
    that chat.js decodes a character whose bytes arrive in two reads (TextDecoder, stream: true).
    """

    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        name = {"/": "index.html"}.get(self.path, self.path.lstrip("/"))
        if not (STATIC / name).is_file():  # /page-config.json: a relay that does not say
            self.send_error(404)
            return
        body = (STATIC / name).read_bytes()
        kinds = {"html": "text/html", "js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
        self.send_response(200)
        self.send_header("Content-Type", kinds[name.rsplit(".", 1)[1]])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        self._write(b'{"model":"split-test"}')
        for char in SPLIT_TEXT:
            encoded = char.encode()
            # A multi-byte character goes out in two writes, 10 ms apart: two network reads.
            for piece in (encoded[:1], encoded[1:]) if len(encoded) > 1 else (encoded,):
                self._write(piece)

    def _write(self, data: bytes) -> None:
        time.sleep(0.01)
        self.wfile.write(data)
        self.wfile.flush()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def split_relay() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SplitWritesRelay)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_characters_split_across_network_reads_render_intact(split_relay: str, page: Page) -> None:
    page.goto(split_relay + "/")
    send(page, "Unicode please")
    expect(page.locator(".turn.assistant .meta").last).to_have_text("Assistant · split-test")
    expect(page.locator(".turn.assistant .text").last).to_have_text(SPLIT_TEXT, timeout=10_000)
    assert "\ufffd" not in answer(page)


def test_emoji_and_cjk_split_across_upstream_reads_render_intact(
    fake: FakeUpstream, relay: RelayServer, page: Page
) -> None:
    text = "Emoji 👩‍💻🎉 and 中文字符 and Ελληνικά"
    fake.replies["gpt-4o-mini"] = Reply(
        body=[sse(chunk("", role="assistant")), sse(chunk(text)), sse(chunk(" ✓")), sse("[DONE]")],
        one_byte_writes=True,
    )
    page.goto(relay.url + "/")
    send(page, "Unicode please")
    expect(page.locator(".turn.assistant .text").last).to_have_text(text + " ✓", timeout=10_000)
    assert "\ufffd" not in answer(page)


# -- layout ---------------------------------------------------------------------------------------


def test_reads_well_on_a_phone(fake: FakeUpstream, relay: RelayServer, open_tab: Callable[..., Page]) -> None:
    phone = open_tab("phone")
    wide = "```\n" + "x = 'a long line of code that is wider than any phone' " * 3 + "\n```\n\n"
    table = "| " + " | ".join(f"column {i}" for i in range(12)) + " |\n|" + "---|" * 12 + "\n"
    phone.goto(relay.url + "/")
    fake.replies["gpt-4o-mini"] = Reply(body=openai_stream(["Short."]))
    for count in (1, 2):  # a conversation that just fits the screen
        send(phone, "Hi")
        wait_for_reply(phone, count)
    phone.click("#settings summary")  # the page grows taller than the screen: it stays at the top
    phone.wait_for_timeout(300)
    taller, scrolled = phone.evaluate("[document.documentElement.scrollHeight > innerHeight, scrollY]")
    assert taller and scrolled == 0
    phone.click("#settings summary")
    fake.replies["gpt-4o-mini"] = Reply(body=openai_stream(["Small", " screens", " too.\n\n", wide, table]))
    send(phone, "Does this fit?")
    wait_for_reply(phone, 3)
    expect(phone.locator(".turn.assistant .text p").last).to_have_text("Small screens too.")
    # Wide code and tables scroll inside the reply; the page itself does not (a phone would
    # zoom out to show a wider page, so innerWidth itself is checked too).
    assert phone.evaluate("[window.innerWidth, document.documentElement.scrollWidth]") == [390, 390]
    for wide_block in (".code pre", ".table"):
        overflows = phone.locator(wide_block).evaluate("block => block.scrollWidth > block.clientWidth")
        assert overflows, wide_block
    for control in ("#send", "#new-chat", "#settings summary"):
        box = phone.locator(control).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, control
    phone.click("#settings summary")  # open, the settings fit too
    for field in ("#url", "#apiKey", "#model", "#settings-form .hint"):
        box = phone.locator(field).last.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, field
    assert phone.evaluate("[window.innerWidth, document.documentElement.scrollWidth]") == [390, 390]


SCREENSHOT_CONVERSATION = [
    (
        "Where does my OpenAI key live?",
        "On the **server** only. The browser sends the conversation to the relay, and the relay "
        "adds the key when it calls OpenAI:\n\n"
        "1. The page POSTs `{model, messages}` to `/api/chat`.\n"
        "2. The relay checks the access token, then calls the upstream with `stream: true`.\n"
        "3. Tokens come back as plain text, as they are written.\n\n"
        "The key never appears in a response or a log line.",
    ),
    (
        "Show me the fetch call.",
        "Read the body with a stream reader:\n\n"
        "```js\n"
        'const response = await fetch("/api/chat", {\n'
        '  method: "POST",\n'
        '  headers: { "Content-Type": "application/json" },\n'
        "  body: JSON.stringify({ model, messages }),\n"
        "  signal: controller.signal,\n"
        "});\n"
        "const reader = response.body.getReader();\n"
        "```\n\n"
        '- The first packet is `{"model": …}`.\n'
        "- `controller.abort()` stops the upstream too.\n"
        "- An error ends the body with `[Error: …]`.",
    ),
]


def png_size(image: bytes) -> tuple[int, int]:
    assert image.startswith(b"\x89PNG\r\n\x1a\n") and image[12:16] == b"IHDR"
    width, height = struct.unpack(">II", image[16:24])
    return width, height


def test_screenshot_for_the_readme(
    fake: FakeUpstream, relay: RelayServer, open_tab: Callable[..., Page], tmp_path: Path
) -> None:
    tab = open_tab("desktop")
    tab.goto(relay.url + "/")
    for count, (question, reply) in enumerate(SCREENSHOT_CONVERSATION, start=1):
        fake.replies["gpt-4o-mini"] = Reply(
            body=openai_stream(tokenize(reply), model="gpt-4o-mini-2024-07-18")
        )
        send(tab, question)
        wait_for_reply(tab, count)
    expect(tab.locator(".turn.assistant ol > li")).to_have_count(3)
    expect(tab.locator(".turn.assistant .code")).to_have_count(1)
    assert tab.evaluate("document.documentElement.scrollHeight > window.innerHeight")  # a long one
    tab.locator("#message").blur()
    picture = tmp_path / "chat-page.png"
    tab.screenshot(path=str(picture))
    image = picture.read_bytes()  # this run's picture, not the committed one
    assert png_size(image) == (1280, 800)
    assert len(image) > 30_000
    if os.environ.get("RELAY_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.write_bytes(image)


# -- served as it should be, or not at all --------------------------------------------------------


def test_page_can_be_turned_off(relay_factory: RelayFactory) -> None:
    relay = relay_factory(SERVE_PAGE="false")
    with httpx.Client() as http:
        assert http.get(relay.url + "/").status_code == 405
        for path in ("/chat.js", "/markdown.js", "/icon.svg"):
            assert http.get(relay.url + path).status_code == 404, path
        # What a page elsewhere may offer with this relay is still said.
        assert http.get(relay.url + "/page-config.json").json() == {"clientKeys": True, "accessTokens": False}


def test_page_config_answers_cors_as_every_endpoint(relay_factory: RelayFactory) -> None:
    relay = relay_factory(ALLOWED_ORIGINS="https://chat.example", ACCESS_TOKENS=ACCESS_TOKEN)
    with httpx.Client() as http:
        preflight = http.options(
            relay.url + "/page-config.json",
            headers={"Origin": "https://chat.example", "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "x-page"},
        )  # fmt: skip
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "https://chat.example"
        assert preflight.headers["allow"] == "GET, HEAD, OPTIONS"
        answer = http.get(relay.url + "/page-config.json", headers={"Origin": "https://chat.example"})
        assert answer.status_code == 200  # no access token needed: the page asks to know whether it needs one
        assert answer.headers["access-control-allow-origin"] == "https://chat.example"
        assert answer.json() == {"clientKeys": True, "accessTokens": True}
        refused = http.get(relay.url + "/page-config.json", headers={"Origin": "https://elsewhere.example"})
        assert refused.status_code == 403


def test_page_files_are_served_with_safe_headers(relay: RelayServer) -> None:
    with httpx.Client() as http:
        for path, content_type in [
            ("/", "text/html"),
            ("/chat.js", "text/javascript"),
            ("/markdown.js", "text/javascript"),
            ("/errors.js", "text/javascript"),
            ("/chat.css", "text/css"),
            ("/icon.svg", "image/svg+xml"),
        ]:
            response = http.get(relay.url + path)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith(content_type)
            assert "default-src 'self'" in response.headers["content-security-policy"]
            assert response.headers["x-content-type-options"] == "nosniff"
        # Nothing from elsewhere: no CDN, no build step.
        html = http.get(relay.url + "/").text
        assert "http://" not in html and "https://" not in html
        assert http.head(relay.url + "/").status_code == 200
    # The renderer builds nodes; the model's text never goes through an HTML parser.
    for script in ("chat.js", "markdown.js", "errors.js"):
        source = (STATIC / script).read_text()
        for sink in (
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ):
            assert sink not in source, (script, sink)


# -- where the browser is (RELAY_BROWSER, RELAY_BROWSER_REQUIRED) --------------------------------


def run_page_tests(**env: str) -> subprocess.CompletedProcess[str]:
    """Two browser tests of this file, in a pytest of their own, with this environment."""
    environ = {name: value for name, value in os.environ.items() if not name.startswith("RELAY_")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rsE",
            "-p",
            "no:cacheprovider",
            "tests/test_page.py::test_characters_split_across_network_reads_render_intact",
            "tests/test_page.py::test_markdown_work_is_bounded",
        ],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_the_browser_the_browser_tests_say_why(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-chromium-here")
    skipped = run_page_tests(RELAY_BROWSER=missing)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "2 skipped" in skipped.stdout and "passed" not in skipped.stdout, skipped.stdout
    assert f"need Chromium at {missing}, which does not exist" in skipped.stdout
    assert "RELAY_BROWSER=/path/to/chromium" in skipped.stdout

    required = run_page_tests(RELAY_BROWSER=missing, RELAY_BROWSER_REQUIRED="1")
    assert required.returncode == 1, required.stdout + required.stderr
    assert "2 errors" in required.stdout and "passed" not in required.stdout, required.stdout
    assert (
        f"RELAY_BROWSER_REQUIRED=1, but the browser tests of tests/test_page.py need Chromium at {missing}"
        in required.stdout
    )
