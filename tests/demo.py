"""The local demo: the function and the fake upstream, a reply streamed to the terminal.

No API key and no network: the fake upstream plays OpenAI. `./dev demo --serve`
leaves both running and prints commands to try.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType
from typing import NoReturn

import httpx

from tests.fake_upstream import FakeUpstream
from tests.relay_server import RelayServer

QUESTION = {"model": "gpt-demo", "messages": [{"role": "user", "content": "Say hello."}]}


def stream_reply(url: str) -> None:
    """POST the question and print the body as it arrives, read by read."""
    print(f"POST {url}/api/chat  {QUESTION}\n", flush=True)
    with httpx.stream("POST", url + "/api/chat", json=QUESTION, timeout=30) as response:
        print(f"HTTP {response.status_code} {response.headers.get('content-type')}", flush=True)
        for index, data in enumerate(response.iter_raw()):
            if index == 0:
                print(f"first packet: {data.decode()}\nreply: ", end="", flush=True)
            else:
                sys.stdout.write(data.decode())
                sys.stdout.flush()
    print("\n")


def stop_on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    """`kill` ends the demo as Ctrl-C does: through the `finally` that stops both servers."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second kill must not cut that short
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="keep running for your own requests")
    args = parser.parse_args()

    fake = FakeUpstream().start()
    relay = RelayServer({"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-demo-not-a-real-key"})
    try:
        relay.start()
        print(f"fake upstream: {fake.base_url}\nrelay:         {relay.url}\n")
        stream_reply(relay.url)
        if args.serve:
            print(f"Both stay up until Ctrl-C. Open the chat page: {relay.url}/  Or try:")
            print(
                f"  curl -N {relay.url}/api/chat -H 'Content-Type: application/json' "
                """-d '{"model":"gpt-demo","messages":[{"role":"user","content":"Hi"}]}'"""
            )
            print(f'  curl -i {relay.url}/api/chat -d \'{{"model":"gpt-demo","messages":[]}}\'   # a 400')
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        relay.stop()
        fake.stop()
        if relay.process is not None and relay.process.returncode not in (0, -15, None):
            print(relay.output(), file=sys.stderr)


if __name__ == "__main__":
    main()
