"""An upstream endpoint's course: the endpoint prepares its request; everything after is shared.

`UpstreamEndpoint.serve`: `prepare` is the endpoint's own (its body checked, the owner's rules,
the bytes to send, its Encoding); then, the same for every endpoint: the route's secrets given
to the Writer, the limits (`admit`), `send`, and `answer`, which decides once between
- a refusal: the upstream's status is not 2xx, or its body is no reply; told in the caller's
  terms (the original route's words, or the upstream's own status and JSON on /v1/);
- a stream, where the caller asked for one: the upstream's events through the endpoint's
  encoder (relay/serving/relayed_stream.py); a whole answer, as the chunks of its stream;
- a whole answer: the upstream's as it came, or as the endpoint makes it (its stream, where it
  sent one, made whole first); or passed on as it arrives (embeddings).
The upstream may speak the OpenAI API or Anthropic's (/v1/messages): what differs is in the
Encoding (how its events and answers are read) and the route (how its errors are named).
Every answer is made by the request's Writer; what the reply cost is watched on the way.
"""

from __future__ import annotations

import http
from typing import Any

import httpx

from relay.access.limiter import Limiter
from relay.access.usage import Usage, most_tokens
from relay.config import Route, Settings
from relay.endpoints.base import Call, Encoding, Outgoing, Upstreams
from relay.formats import jsoncodec
from relay.formats.anthropic_events import message_as_events, message_of
from relay.formats.chat_chunks import chunks_as_completion, completion_as_chunks
from relay.formats.encoding import DONE
from relay.formats.responses_passthrough import ENDS
from relay.formats.sse import EventTooLarge, SSEDecoder
from relay.serving.passed_body import PassedBody
from relay.serving.relayed_stream import RelayedStream
from relay.serving.writer import Written
from relay.upstream.bodies import JSON, OPENAI_API, Answer, body_kind, passed_headers, read_answer, read_error
from relay.upstream.failures import UpstreamError, UpstreamHTTPError, UpstreamUnreachable


class UpstreamEndpoint:
    """The shape of every endpoint that calls an upstream: prepare the request, admit, send, answer.

    `prepare` reads and checks the body and applies the owner's rules; what it parsed is
    dropped when it returns, so a stream holds none of it (only the bytes to send, until
    the upstream answers).
    """

    methods: tuple[str, ...] = ("POST",)
    needs_token = True

    def __init__(self, settings: Settings, upstreams: Upstreams, limiter: Limiter) -> None:
        self.settings = settings
        self.upstreams = upstreams
        self.limiter = limiter

    def prepare(self, call: Call) -> Outgoing:
        raise NotImplementedError

    def serve(self, call: Call) -> Written:
        outgoing = self.prepare(call)
        # Whatever the upstream sends back, these never reach the caller: the key it was sent
        # with, and the route's own headers (an upstream may echo any of them).
        call.writer.keep_secret(outgoing.api_key, *outgoing.route.secrets)
        call.log.prompt_bytes = len(outgoing.body)
        self.admit(call, outgoing)
        response = self.upstreams.send(call, outgoing)
        return answer(call, outgoing, response)

    def admit(self, call: Call, outgoing: Outgoing) -> None:
        """The owner's rate limits and spend caps: the most the request may cost reserved before anything
        is sent (429 where it does not fit), what it cost settled when it ends."""
        if call.caller is None or not self.settings.limits.any:
            return
        # A request the upstream bills nothing for (count_tokens) counts as a request, and no tokens.
        most = 0 if outgoing.encoding.free else most_tokens(len(outgoing.body), outgoing.most_output)
        reservation = self.limiter.admit(call.caller, outgoing.model, most)
        if reservation.held:
            # What it cost (relay/serving/writer.py counts it as the log line is written); nothing
            # where the upstream refused it.
            call.on_end(lambda: self.limiter.settle(reservation, call.log.tokens or 0))


def answer(call: Call, outgoing: Outgoing, response: httpx.Response) -> Written:
    """The caller's answer to the upstream's response, made by the request's Writer."""
    encoding, route = outgoing.encoding, outgoing.route
    kind = body_kind(response)
    if not response.is_success or kind == "other":
        return refused(call, encoding, read_error_while_there(call, response), route)
    usage = Usage()
    if not encoding.free:  # else nothing is counted: the log line has no tokens, the limits none
        call.writer.usage = usage
    headers = passed_headers(response.headers) if encoding.sdk_headers else ()
    made_stream = encoding.upstream in ("chat", "messages")  # a whole answer of theirs can be made a stream
    if outgoing.stream and encoding.encoder is not None and (kind == "stream" or made_stream):
        # A whole answer where a stream was asked (an upstream that ignored `stream`): its events.
        whole = None
        if kind != "stream":
            whole = whole_as_events(read_while_there(call, response, route.api_name).body, encoding.upstream)
        source = RelayedStream(
            response,
            encoding.encoder(),
            usage.watcher(encoding.upstream),
            log=call.log,
            client=call.client,
            settings=call.settings,
            whole=whole,
            keepalive=encoding.keepalive,
        )
        return call.writer.stream(source, encoding.content_type, headers)
    if encoding.as_it_arrives and kind == "json":
        deadline = call.log.started + call.settings.stream_max_seconds
        passed = PassedBody(response, client=call.client, deadline=deadline)
        return call.writer.stream(passed, JSON, headers)
    whole_answer = read_while_there(call, response, route.api_name)
    value = answer_value(whole_answer.body, kind, encoding)
    if isinstance(value, dict):
        usage.whole(encoding.upstream, value)
    body = whole_answer.body if kind == "json" and encoding.whole is None else None
    if body is None and value is not None:
        made = value if encoding.whole is None else encoding.whole(value)
        body = None if made is None else jsoncodec.dumps(made)
    if body is None:
        raise UpstreamUnreachable(
            f"{route.api_name} error: {whole_answer.host} answered {whole_answer.status} with "
            f"{whole_answer.content_type.split(';')[0]} that holds no reply."
        )
    return call.writer.fixed(whole_answer.status, body, JSON, whole_answer.headers, outcome="ok")


def read_while_there(call: Call, response: httpx.Response, api: str = OPENAI_API) -> Answer:
    """The upstream's whole answer, read while the client is there and the request has time left."""
    with call.client.interruptible():
        return read_answer(response, call.seconds_left(), api)


def read_error_while_there(call: Call, response: httpx.Response) -> Answer:
    """The upstream's error answer (its body only to be quoted), read while the client is there."""
    with call.client.interruptible():
        return read_error(response)


def whole_as_events(body: bytes, upstream: str = "chat") -> list[bytes]:
    """A whole answer as the events of its stream: a completion's chunks or a Message's events, or an
    error as it came."""
    try:
        value = jsoncodec.loads(body)
    except jsoncodec.JSONDecodeError:
        return [body]  # skipped, and logged by size, as a stream's data that is no JSON is
    if isinstance(value, dict) and value.get("error") is not None:
        return [body]
    if not isinstance(value, dict):
        return []
    events = message_as_events(value) if upstream == "messages" else completion_as_chunks(value)
    return [jsoncodec.dumps(event) for event in events or ()]


def answer_value(body: bytes, kind: str, encoding: Encoding) -> dict[str, Any] | None:
    """The upstream's whole answer as a JSON object; an event stream where one was asked, made whole."""
    if kind == "json":
        try:
            value = jsoncodec.loads(body)
        except jsoncodec.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None
    decoder = SSEDecoder()
    try:
        payloads = [*decoder.feed(body), *decoder.flush()]
    except EventTooLarge:
        return None
    events = [jsoncodec.event_object(payload) for payload in payloads if payload != DONE]
    objects = [value for value in events if value is not None]
    if encoding.upstream == "chat":
        return chunks_as_completion(objects)
    if encoding.upstream == "messages":
        return message_of(objects)
    ends = [value.get("response") for value in objects if str(value.get("type")) in ENDS]
    return ends[-1] if ends and isinstance(ends[-1], dict) else None


# -- an upstream that refused, told in the caller's terms --


def refused(call: Call, encoding: Encoding, refusal: Answer, route: Route) -> Written:
    if encoding.refusal == "text":
        raise in_original_words(refusal)
    return passed_on(call, refusal, route.base_url_setting)


def passed_on(
    call: Call, refusal: Answer, base_url: str = "OPENAI_BASE_URL (or the route's base_url)"
) -> Written:
    """The upstream's error as it came, so the SDKs raise their usual errors; JSON even where it sent none.

    JSON the relay makes is in the shape of the request's API (OpenAI's, or Anthropic's);
    `base_url`: the setting to check when the upstream's answer says it is likely wrong.
    """
    status, content_type, body = refusal.status, refusal.content_type, refusal.body
    if not (200 <= status < 300 or 400 <= status <= 599):
        # A redirect, or a status no client knows: the base URL likely points somewhere else.
        status, content_type = 502, JSON
        body = call.writer.error_body(
            f"The upstream ({refusal.host}) answered {refusal.status}, which the relay cannot pass on; "
            f"check {base_url}.",
            status,
        )
    elif not content_type.lower().startswith(JSON) or not body:
        # An HTML error page or the like, or a body too long or too slow to quote.
        status = status if status >= 400 else 502
        body = call.writer.error_body(
            f"The upstream ({refusal.host}) answered {refusal.status} without a JSON body.", status
        )
        content_type = JSON
    # Its Retry-After and rate-limit headers go along: the caller's SDK retries a 429 or a 5xx as
    # it always does (the relay has not: relay/upstream/client.py).
    return call.writer.fixed(status, body, content_type, refusal.headers, outcome="upstream_error")


def in_original_words(refusal: Answer) -> UpstreamError:
    """What the original route's caller is told: `OpenAI API error: <status> <reason> <JSON body, or {}>`."""
    status, host = refusal.status, refusal.host
    if 200 <= status < 300:
        return UpstreamUnreachable(
            f"OpenAI API error: {host} answered {status} with {refusal.content_type}, not an event stream; "
            "check its base URL."
        )
    try:
        payload = jsoncodec.dumps(jsoncodec.loads(refusal.body)).decode()
    except jsoncodec.JSONDecodeError:
        payload = "{}"
    # HTTP/2 has no reason phrase; then the standard one, or "" if unknown.
    reason = refusal.reason or _standard_reason(status)
    # The 2023 client shows this text, and looks for "429 Too Many Requests" in it.
    message = f"OpenAI API error: {status} {reason} {payload}"
    if 400 <= status <= 599:
        return UpstreamHTTPError(status, message, dict(refusal.headers).get("retry-after"))
    # A redirect or another status the relay cannot pass on: the base URL is likely wrong.
    return UpstreamUnreachable(f"{message} (unexpected status from the upstream; check OPENAI_BASE_URL)")


def _standard_reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""
