"""The chat page in a real browser (Debian's Chromium, driven by Playwright), against the real server."""

from __future__ import annotations

import functools
import http.server
import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from relay.page import STATIC
from tests.conftest import ACCESS_TOKEN, RelayFactory
from tests.fake_upstream import FakeUpstream, Pause, Reply, chunk, openai_stream, sse
from tests.relay_server import ROOT, RelayServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOT = ROOT / "docs" / "chat-page.png"


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    assert Path(CHROMIUM).exists(), "the browser tests need Debian's chromium: ./dev test installs it"
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield instance
    instance.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 900, "height": 700})
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture(scope="module")
def other_origin() -> Iterator[str]:
    """The page's files served by a plain static server on another port: another origin."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(STATIC))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def send(page: Page, text: str) -> None:
    page.fill("#message", text)
    page.press("#message", "Enter")


def answer(page: Page) -> str:
    return page.locator(".turn.assistant .text").last.inner_text()


def set_setting(page: Page, name: str, value: str) -> None:
    page.click("#settings summary")
    page.fill(f"#{name}", value)
    page.click("#settings summary")


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


def test_access_token(fake: FakeUpstream, relay_factory: RelayFactory, page: Page) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN)
    fake.replies["gpt-4o-mini"] = Reply(body=openai_stream(["With", " the", " token"]))
    page.goto(relay.url + "/")
    send(page, "Hi")
    error = page.locator(".turn.assistant.error .text").last
    expect(error).to_contain_text("HTTP 401")
    expect(error).to_contain_text("this relay needs an access token")
    assert fake.requests == []

    set_setting(page, "token", ACCESS_TOKEN)
    page.press("#message", "Enter")  # the question came back to the box
    expect(page.locator(".turn.assistant .text").last).to_have_text("With the token")
    assert ACCESS_TOKEN not in page.url
    page.reload()  # remembered in this browser
    page.click("#settings summary")
    expect(page.locator("#token")).to_have_value(ACCESS_TOKEN)


SPLIT_TEXT = "Emoji 👩‍💻🎉 and 中文字符 and Ελληνικά ✓"


class SplitWritesRelay(http.server.BaseHTTPRequestHandler):
    """Serves the page, and answers /api/chat with every character cut between two network writes.

    The real relay only ever writes whole characters; this stand-in checks the page's side:
    that chat.js decodes a character whose bytes arrive in two reads (TextDecoder, stream: true).
    """

    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        name = {"/": "index.html"}.get(self.path, self.path.lstrip("/"))
        body = (STATIC / name).read_bytes()
        kind = {"html": "text/html", "js": "text/javascript", "css": "text/css"}[name.rsplit(".", 1)[1]]
        self.send_response(200)
        self.send_header("Content-Type", kind)
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


def test_reads_well_on_a_phone(fake: FakeUpstream, relay: RelayServer, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    fake.replies["gpt-4o-mini"] = Reply(body=openai_stream(["Small", " screens", " too."]))
    phone.goto(relay.url + "/")
    send(phone, "Does this fit?")
    expect(phone.locator(".turn.assistant .text").last).to_have_text("Small screens too.")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert phone.locator("#send").bounding_box() is not None
    context.close()


def test_screenshot_for_the_readme(fake: FakeUpstream, relay: RelayServer, page: Page) -> None:
    fake.replies["gpt-4o-mini"] = Reply(
        body=openai_stream(
            [
                "The key stays on the server.",
                " This page streams from the relay,",
                " token by token;",
                " Stop keeps what arrived.",
            ],
            model="gpt-4o-mini-2024-07-18",
        )
    )
    page.goto(relay.url + "/")
    send(page, "Where is my API key?")
    expect(page.locator(".turn.assistant .text").last).to_have_text(
        "The key stays on the server. This page streams from the relay, token by token; Stop keeps what arrived."
    )
    image = page.screenshot()
    assert image.startswith(b"\x89PNG") and len(image) > 10_000  # this run's picture, not the committed one
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.write_bytes(image)


def test_page_can_be_turned_off(relay_factory: RelayFactory) -> None:
    relay = relay_factory(SERVE_PAGE="false")
    with httpx.Client() as http:
        assert http.get(relay.url + "/").status_code == 405
        assert http.get(relay.url + "/chat.js").status_code == 404


def test_page_files_are_served_with_safe_headers(relay: RelayServer) -> None:
    with httpx.Client() as http:
        for path, content_type in [
            ("/", "text/html"),
            ("/chat.js", "text/javascript"),
            ("/chat.css", "text/css"),
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
