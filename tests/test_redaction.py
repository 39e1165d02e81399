"""Keys never reach a caller or a log line, however an upstream quotes them; text that is not a key passes as it is."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.access import redaction
from relay.access.redaction import REDACTED, Redactor, redact, redactor_for
from relay.access.secret_forms import MASK, base64_forms, public_prefix
from relay.config.placeholders import is_secret

KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXyZ0QPO0"
AFTER_PREFIX = KEY.removeprefix("sk-proj-")  # what is secret in KEY: 36 characters


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # The redactors a test uses are built in that test, not found in the process-wide cache.
    monkeypatch.setattr(redaction, "_CACHE", {})


# -- what is a secret --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["ollama", "EMPTY", "none", "lm-studio", "sk-no-key-required", "not-needed", "sk-1234", "x" * 19,
     "placeholder-api-key-for-local-use", "LOCAL_SERVER_KEY_PLACEHOLDER"],
)  # fmt: skip
def test_a_placeholder_is_not_a_secret_and_replies_that_mention_it_pass_byte_for_byte(key: str) -> None:
    assert not is_secret(key)
    reply = f"I am llama3.2, running under {key}: run `{key} pull llama3.1` ({key})."
    assert redact(reply, (key,)) == reply
    assert Redactor((key,)).redact_bytes(reply.encode()) == reply.encode()


@pytest.mark.parametrize("secret", [KEY, "tok-ACCESS-SECRET-9c4e1a7b3d5f", "a" * 19 + "1", "gsk_" + "Q" * 16])
def test_twenty_characters_that_are_not_words_are_a_secret(secret: str) -> None:
    assert is_secret(secret)


# -- what of a secret is redacted ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"bad key {KEY}", f"bad key {REDACTED}", id="whole"),
        pytest.param(f"{KEY} and again {KEY}.", f"{REDACTED} and again {REDACTED}.", id="quoted-twice"),
        pytest.param(f"starts {AFTER_PREFIX[:8]}!", f"starts {REDACTED}!", id="first-eight"),
        pytest.param(f"ends {AFTER_PREFIX[-8:]}", f"ends {REDACTED}", id="last-eight"),
        pytest.param(f"middle {AFTER_PREFIX[14:26]} middle", f"middle {REDACTED} middle", id="longer-run-once"),
        pytest.param(f"x{AFTER_PREFIX[:8]}{AFTER_PREFIX[10:18]}y", f"x{REDACTED}y", id="runs-back-to-back-once"),
        pytest.param(f"a {AFTER_PREFIX[:9]} b {AFTER_PREFIX[20:28]} c", f"a {REDACTED} b {REDACTED} c", id="two-runs"),
        pytest.param(f"sk-proj-{AFTER_PREFIX[:8]}", f"sk-proj-{REDACTED}", id="prefix-shown-secret-not"),
    ],
)  # fmt: skip
def test_the_key_and_any_run_of_eight_after_its_prefix_are_redacted(text: str, expected: str) -> None:
    assert redact(text, (KEY,)) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"seven {AFTER_PREFIX[:7]} in a row", id="first-seven"),
        pytest.param(f"{AFTER_PREFIX[3:10]} and {AFTER_PREFIX[20:27]}", id="sevens-apart"),
        pytest.param(f"key ending {AFTER_PREFIX[-4:]}", id="last-four-as-openai-shows"),
        pytest.param("keys of a project start sk-proj-, as in a sub-project", id="public-prefix"),
        pytest.param("sk-project sk-pro sk-...", id="prefix-like-words"),
    ],
)
def test_seven_characters_in_a_row_and_the_public_prefix_pass_unchanged(text: str) -> None:
    assert redact(text, (KEY,)) == text


ANTHROPIC_KEY = (
    "sk-ant-api03-"
    + "Zq8Rw2Ty6Ui0Op4As8Df2Gh6Jk0Lz4Xc8Vb2Nm6Qw0Er4Ty8Ui2Op6As0Df4Gh8Jk2Lz6Xc0Vb4Nm8Qw2Er6T-AbCdEfAA"
)


def test_an_anthropic_keys_public_prefix_stays_and_the_rest_goes() -> None:
    text = f"Anthropic keys start sk-ant-api03-; yours was {ANTHROPIC_KEY} ({ANTHROPIC_KEY[13:21]}…)"
    assert (
        redact(text, (ANTHROPIC_KEY,))
        == f"Anthropic keys start sk-ant-api03-; yours was {REDACTED} ({REDACTED}…)"
    )
    stream = Redactor((ANTHROPIC_KEY,)).stream()
    assert stream.feed(f"key {ANTHROPIC_KEY}\n".encode()) + stream.flush() == b"key sk-ant-api03-[redacted]\n"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Incorrect API key provided: sk-proj-********QPO0.", id="prefix-asterisks-end"),
        pytest.param("Incorrect API key provided: sk-proj-Ab3d...QPO0.", id="dots"),
        pytest.param("Incorrect API key provided: sk-proj-Ab…QPO0.", id="ellipsis"),
        pytest.param("Incorrect API key provided: sk-proj-Ab3d****.", id="start-only"),
        pytest.param("Incorrect API key provided: ****QPO0.", id="end-only"),
    ],
)
def test_a_masked_form_of_the_key_is_redacted(text: str) -> None:
    assert redact(text, (KEY,)) == f"Incorrect API key provided: {REDACTED}."


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Incorrect API key provided: sk-abc***xyz.", id="another-key"),
        pytest.param('export OPENAI_API_KEY="sk-..."', id="readme-placeholder"),
        pytest.param("a key looks like sk-… or sk-***.", id="nothing-shown"),
        pytest.param("wait... and ***bold*** then ...", id="ordinary-dots-and-stars"),
        pytest.param("sk-proj-Ab3d***QPO0X", id="an-end-not-the-keys"),
    ],
)
def test_a_mask_that_is_not_of_the_key_is_text(text: str) -> None:
    assert redact(text, (KEY,)) == text


def test_a_mask_that_shows_more_than_it_hides_is_not_one_but_its_runs_go() -> None:
    shows_most = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t***"  # 24 shown, 12 hidden
    assert redact(shows_most, (KEY,)) == f"sk-proj-{REDACTED}***"


@pytest.mark.parametrize("skip", [0, 1, 2])
@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_the_key_in_base64_is_redacted_at_every_alignment(skip: int, encode: object) -> None:
    encoded = encode(b"B" * skip + f"Bearer {KEY}".encode()).decode()  # type: ignore[operator]
    redacted = redact(f"header: {encoded}", (KEY,))
    assert REDACTED in redacted
    assert encoded[20:-8] not in redacted  # the part made of the key's bits alone


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("sk-proj-\\u0041\\u0062\\u0033\\u0064\\u0045f6hI", f"sk-proj-{REDACTED}", id="json-escaped"),
        pytest.param("key=sk-proj-%41%62%33%64%45f6h", f"key=sk-proj-{REDACTED}", id="percent-escaped"),
        pytest.param("%61%62 %41b3dEf6hI", f"ab {REDACTED}", id="the-text-shown-unescaped"),
        pytest.param("a%20b %41b3dEf6h", f"a%20b {REDACTED}", id="other-escapes-kept"),
    ],
)  # fmt: skip
def test_a_key_behind_escapes_is_redacted(text: str, expected: str) -> None:
    assert redact(text, (KEY,)) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("path%2Fto%2Ffile 100% sure", id="percent-escapes-without-a-secret"),
        pytest.param("caf\\u00e9 \\u0041b3dEf6", id="json-escapes-of-seven"),
        pytest.param("\\\\u0041b3dEf6h", id="escaped-backslash-then-text"),
    ],
)
def test_escapes_without_eight_of_the_key_behind_them_are_left_as_they_are(text: str) -> None:
    assert redact(text, (KEY,)) == text


def test_a_secret_that_holds_another_is_redacted_whole() -> None:
    long = "sk-server-SECRET-z7f3a9c1e5b-and-more"
    short = "SECRET-z7f3a9c1e5b-an"
    for secrets in ((short, long), (long, short)):
        assert redact(f"key {long}.", secrets) == f"key {REDACTED}."
        assert redact(f"pin {short}.", secrets) == f"pin {REDACTED}."


# -- what is not a secret passes byte for byte ---------------------------------------------------


def shares_eight(text: str) -> bool:
    secret_forms = [
        AFTER_PREFIX,
        *(base64.b64encode(b"\0" * skip + KEY.encode()).decode() for skip in range(3)),
    ]
    return any(text[i : i + 8] in form for form in secret_forms for i in range(len(text) - 7))


@settings(max_examples=400, deadline=None)
@given(
    st.text(max_size=200)
    | st.binary(max_size=120).map(lambda data: base64.b64encode(data).decode())
    | st.binary(max_size=64).map(lambda data: hashlib.sha256(data).hexdigest())
)
def test_text_hashes_and_base64_that_share_fewer_than_eight_characters_pass_byte_for_byte(text: str) -> None:
    if shares_eight(text):
        return
    data = text.encode("utf-8", "surrogatepass")
    assert Redactor((KEY,)).redact_bytes(data) == data
    assert redact(text, (KEY,)) == text


def test_redact_bytes_gives_back_the_same_bytes_when_nothing_is_found() -> None:
    data = b"nothing secret here, 100% sure... \\u00e9"
    assert Redactor((KEY,)).redact_bytes(data) is data
    assert Redactor((KEY,)).redact_bytes(f"clé {KEY} ✓".encode()) == f"clé {REDACTED} ✓".encode()


def test_no_secret_no_redaction() -> None:
    redactor = Redactor((None, "", "ollama"))
    assert not redactor.active
    assert (
        redactor.redact("Incorrect API key provided: sk-abc***xyz.")
        == "Incorrect API key provided: sk-abc***xyz."
    )


# -- a stream: one text, however its writes split it -----------------------------------------------


def streamed(secret: str, parts: list[bytes]) -> tuple[bytes, list[bytes]]:
    stream = Redactor((secret,)).stream()
    writes = [stream.feed(part) for part in parts]
    writes.append(stream.flush())
    return b"".join(writes), writes


pieces = st.one_of(
    st.text(alphabet="abc .\n", max_size=6),
    st.integers(0, len(AFTER_PREFIX) - 1).flatmap(
        lambda start: st.integers(1, 12).map(lambda size: AFTER_PREFIX[start : start + size])
    ),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(pieces, min_size=1, max_size=8).map("".join), st.data())
def test_a_stream_gives_the_same_bytes_however_its_writes_split_it(text: str, data: st.DataObject) -> None:
    """Cut anywhere but inside a masked form: a mask is read within one write (relay/access/redaction.py),
    since its visible start may be any length and the carry is bounded. A mask split apart shows no more
    than its visible ends (a run of RUN characters in it is still caught): see the test after this one."""
    raw = text.encode()
    whole, _ = streamed(KEY, [raw])
    inside_masks = {at for mask in MASK.finditer(raw) for at in range(mask.start() + 1, mask.end())}
    cuts = sorted(
        data.draw(
            st.sets(st.integers(1, max(len(raw) - 1, 1)), max_size=10).map(lambda cut: cut - inside_masks)
        )
    )
    parts = [raw[start:end] for start, end in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert streamed(KEY, parts)[0] == whole
    assert (AFTER_PREFIX[:8] in text) <= (REDACTED.encode() in whole)


def test_a_mask_split_across_writes_hides_the_key_all_the_same() -> None:
    """Found by the test above (before it kept its cuts out of masks): whole, the mask is redacted
    with its dots; split after the first dot, the dots stay and the key's characters are a run."""
    text = b"..." + AFTER_PREFIX[-12:].encode()
    assert streamed(KEY, [text])[0] == REDACTED.encode()
    assert streamed(KEY, [text[:1], text[1:]])[0] == b"..." + REDACTED.encode()


def test_a_run_split_across_writes_is_caught_and_held_back_no_more_than_seven_characters() -> None:
    parts = [b"the key ", AFTER_PREFIX[:4].encode(), AFTER_PREFIX[4:9].encode(), b" and on"]
    whole, writes = streamed(KEY, parts)
    assert whole == f"the key {REDACTED} and on".encode()
    assert writes[0] == b"the key "  # no character of the key at its end: nothing held
    assert writes[1] == b""  # four characters that could begin a run: held
    assert writes[2] == REDACTED.encode()  # with the next five, a run: redacted


def test_text_without_the_keys_characters_is_never_held() -> None:
    stream = Redactor((KEY,)).stream()
    for part in (b"data: {}\n\n", b"\xc3\xa9 ! ", b"[]{}"):
        assert stream.feed(part) == part


def test_a_placeholder_key_holds_nothing_back() -> None:
    stream = Redactor(("ollama",)).stream()
    assert stream.feed(b"ollama") == b"ollama"
    assert stream.flush() == b""


def test_a_redactor_is_kept_for_the_same_secrets_and_the_cache_is_bounded() -> None:
    first = redactor_for(("sk-first-0000000000000000",))
    assert redactor_for(("sk-first-0000000000000000",)) is first
    for number in range(1, redaction._CACHE_SIZE):
        redactor_for((f"sk-other-{number:016}",))
    assert redactor_for(("sk-first-0000000000000000",)) is first  # the cache holds _CACHE_SIZE sets
    redactor_for(("sk-one-more-000000000000",))  # one set too many: the cache starts again
    assert redactor_for(("sk-first-0000000000000000",)) is not first


# -- what the mutation run found untested ------------------------------------------------------------


def test_a_run_at_the_very_start_of_a_text_or_a_stream_is_redacted_with_its_marker() -> None:
    run = AFTER_PREFIX[:8]
    assert redact(run, [KEY]) == REDACTED
    assert redact(run + " tail", [KEY]) == REDACTED + " tail"
    assert streamed(KEY, [run.encode() + b" tail"])[0] == REDACTED.encode() + b" tail"


def test_a_text_with_a_lone_surrogate_is_redacted_and_kept_as_it_was() -> None:
    assert redact("x\ud83d " + KEY, [KEY]) == "x\ud83d " + REDACTED


def test_a_key_character_no_form_of_the_key_holds_is_not_held_back() -> None:
    stream = Redactor((KEY,)).stream()
    assert stream.feed(b"hello~") == b"hello~"  # "~" may be in a key, but is in none of this one's forms
    assert stream.flush() == b""


SHORT_SECRET = "Zq8Xw2Lp5Nc7Rt4Vb9Mk"  # 20 characters, no public prefix


@pytest.mark.parametrize(
    ("mask", "redacted"),
    [
        pytest.param("Zq8Xw...b9Mk", True, id="hidden-11-shown-9"),
        pytest.param("Zq8Xw...Vb9Mk", False, id="hidden-10-shown-10"),
        pytest.param("Zq8Xw2L...t4Vb9Mk", False, id="hidden-6-shown-14"),
    ],
)
def test_a_mask_is_redacted_only_where_it_hides_more_than_it_shows(mask: str, redacted: bool) -> None:
    assert redact(f"a {mask} b", [SHORT_SECRET]) == (f"a {REDACTED} b" if redacted else f"a {mask} b")


def test_of_two_secrets_one_inside_the_other_the_longer_is_redacted_whole() -> None:
    inner = SHORT_SECRET
    outer = "0" + SHORT_SECRET  # sorts before the inner one ("0" < "Z"), and holds it
    assert redact(f"x {outer} y", [inner, outer]) == f"x {REDACTED} y"
    assert redact(f"x {outer} y", [outer, inner]) == f"x {REDACTED} y"


def test_a_streams_first_write_has_nothing_before_it() -> None:
    secret = "XXXXab12cd34ef56gh78"  # its run of eight would begin before the stream did
    assert streamed(secret, [b"ab12 hi"])[0] == b"ab12 hi"


# -- the forms of a secret (relay/access/secret_forms.py) --------------------------------------------


@pytest.mark.parametrize(
    ("secret", "prefix"),
    [
        pytest.param(b"sk-proj-" + b"a" * 8, 8, id="eight-after-the-prefix"),
        pytest.param(b"sk-proj-" + b"a" * 7, 0, id="seven-after-the-prefix-is-no-prefix"),
        pytest.param(b"sk-ant-api03-" + b"a" * 20, 13, id="the-longest-in-use"),
        pytest.param(b"abcdefg-hijklmn-" + b"a" * 20, 0, id="longer-than-a-prefix"),
        pytest.param(b"Zq8Xw2Lp5Nc7Rt4Vb9Mk", 0, id="none"),
    ],
)
def test_a_keys_public_prefix(secret: bytes, prefix: int) -> None:
    assert public_prefix(secret) == prefix


def test_the_base64_forms_of_a_secret_are_its_bits_alone_in_three_alignments_and_two_alphabets() -> None:
    secret = b"Ab3d~Ef6h?Ij9k"
    # base64 of b"" + secret + "!!!" is QWIzZH5FZjZoP0lqOWshISE=; of b"x" + ... eEFiM2R+RWY2aD9JajlrISEh;
    # of b"xy" + ... eHlBYjNkfkVmNmg/SWo5ayEhIQ==: the characters that depend on the secret alone.
    assert base64_forms(secret) == {
        b"QWIzZH5FZjZoP0lqOW",
        b"FiM2R+RWY2aD9Jajlr",
        b"FiM2R-RWY2aD9Jajlr",
        b"BYjNkfkVmNmg/SWo5a",
        b"BYjNkfkVmNmg_SWo5a",
    }
    for before in (b"", b"x", b"xy", b"xyz", b"\xff\xfe"):
        for after in (b"", b"!", b"\x00\xff"):
            encoded = base64.b64encode(before + secret + after)
            assert any(form in encoded for form in base64_forms(secret))
