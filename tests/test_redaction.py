"""Keys and tokens never reach a caller or a log line, however an upstream quotes them."""

from __future__ import annotations

import pytest

from relay.access import redaction
from relay.access.redaction import REDACTED, Redactor, redact, redactor_for

KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXyZ0QPO0"


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # The redactors a test uses are built in that test, not found in the process-wide cache.
    monkeypatch.setattr(redaction, "_CACHE", {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"bad key {KEY}", f"bad key {REDACTED}", id="whole"),
        pytest.param(f"{KEY} and again {KEY}.", f"{REDACTED} and again {REDACTED}.", id="quoted-twice"),
        pytest.param("sk-proj-Ab3***********QPO0 refused", f"{REDACTED} refused", id="masked-openai-style"),
        pytest.param("nothing secret here", "nothing secret here", id="nothing"),
    ],
)
def test_a_key_is_redacted_wherever_it_is_quoted(text: str, expected: str) -> None:
    assert redact(text, (KEY,)) == expected


def test_with_no_secret_to_look_for_a_masked_key_is_still_redacted() -> None:
    # A route without a key (a local server) still relays errors; whatever key they quote, masked, goes.
    assert (
        redact("Incorrect API key provided: sk-abc***xyz.", (None,))
        == f"Incorrect API key provided: {REDACTED}."
    )
    assert (
        redact("Incorrect API key provided: sk-abc***xyz.", ()) == f"Incorrect API key provided: {REDACTED}."
    )


AFTER_PREFIX = KEY.removeprefix("sk-proj-")  # what is secret in KEY: 36 characters


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"starts {AFTER_PREFIX[:5]}!", f"starts {REDACTED}!", id="first-five"),
        pytest.param(f"ends {AFTER_PREFIX[-5:]}", f"ends {REDACTED}", id="last-five"),
        pytest.param(
            f"middle {AFTER_PREFIX[14:26]} middle", f"middle {REDACTED} middle", id="longer-run-once"
        ),
        pytest.param(
            f"x{AFTER_PREFIX[:5]}{AFTER_PREFIX[10:15]}y", f"x{REDACTED}y", id="runs-back-to-back-once"
        ),
        pytest.param(
            f"a {AFTER_PREFIX[:7]} b {AFTER_PREFIX[20:28]} c", f"a {REDACTED} b {REDACTED} c", id="two-runs"
        ),
        pytest.param(
            f"{AFTER_PREFIX[:5]} b {AFTER_PREFIX[20:28]} c {AFTER_PREFIX[-6:]}",
            f"{REDACTED} b {REDACTED} c {REDACTED}",
            id="three-runs",
        ),
        pytest.param(f"sk-proj-{AFTER_PREFIX[:6]}", f"sk-proj-{REDACTED}", id="prefix-shown-secret-not"),
    ],
)
def test_any_run_of_five_characters_after_the_public_prefix_is_redacted(text: str, expected: str) -> None:
    assert redact(text, (KEY,)) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"key ending {AFTER_PREFIX[-4:]}", id="last-four-as-openai-shows"),
        pytest.param(f"{AFTER_PREFIX[:4]} {AFTER_PREFIX[4:8]}", id="fours-apart"),
        pytest.param("keys of a project start sk-proj-, as in a sub-project", id="public-prefix"),
        pytest.param("sk-project sk-pro", id="prefix-like-words"),
    ],
)
def test_four_characters_in_a_row_and_the_public_prefix_are_not_secret(text: str) -> None:
    assert redact(text, (KEY,)) == text


@pytest.mark.parametrize(
    ("secret", "text", "expected"),
    [
        # Four characters after the prefix are too few to stand alone: the prefix is part of the secret.
        pytest.param("sk-proj-Ab3d", "sk-project", f"{REDACTED}ect", id="short-rest-prefix-counts"),
        pytest.param("sk-proj-Ab3d", "key sk-proj-Ab3 here", f"key {REDACTED} here", id="short-rest-run"),
        pytest.param("sk-proj-Ab3dE", "sk-project", "sk-project", id="five-left-prefix-public"),
        pytest.param("sk-proj-Ab3dE", "x Ab3dE x", f"x {REDACTED} x", id="five-left-redacted"),
        # A prefix of at most twelve characters is public; a longer one is part of the secret.
        pytest.param("ab-defg-hij-XYZ98765", "ab-defg-hij-other", "ab-defg-hij-other", id="prefix-of-twelve"),
        pytest.param("abc-defg-hij-XYZ98765", "abc-defg-hij-other", f"{REDACTED}other", id="prefix-of-thirteen"),
        pytest.param("Tok-ALICE-7d1e9b3f5a", "Tok-A", REDACTED, id="no-prefix-upper-case"),
        # Secrets shorter than five characters are redacted whole.
        pytest.param("abcd", "code abcd here, abc there", f"code {REDACTED} here, abc there", id="short-secret"),
        pytest.param("abcde", "x abcde x", f"x {REDACTED} x", id="secret-of-five"),
        pytest.param("tok-alice-7d1e9b3f5a", "tok-alice-7d1e9b3f5a", REDACTED, id="whole-token"),
    ],
)  # fmt: skip
def test_what_counts_as_secret(secret: str, text: str, expected: str) -> None:
    assert redact(text, (secret,)) == expected


def test_a_secret_that_holds_another_is_redacted_whole() -> None:
    # The longest first (whatever their order and spelling): replacing the shorter one first
    # would break the longer one into runs, and leave its prefix behind.
    long = "sk-server-SECRET-z7f3a9c1e5b"
    for short in ("z7f3", "7f3a"):
        for secrets in ((short, long), (long, short)):
            assert redact(f"key {long}.", secrets) == f"key {REDACTED}."
            assert redact(f"pin {short}.", secrets) == f"pin {REDACTED}."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "sk-proj-\\u0041\\u0062\\u0033\\u0064\\u0045f6h", f"sk-proj-{REDACTED}", id="json-escaped"
        ),
        pytest.param("key=sk-proj-%41%62%33%64%45f", f"key=sk-proj-{REDACTED}", id="percent-escaped"),
        pytest.param("%41%62%33%64%45", REDACTED, id="percent-escaped-only"),
        pytest.param("k\\u0041b3dE6", f"k{REDACTED}6", id="json-escape-upper-case-hex"),
        pytest.param("\\u0041\\u0062\\u0033\\u0064\\u0045", REDACTED, id="json-escaped-only"),
        pytest.param("%61%62 %41b3dE", f"ab {REDACTED}", id="the-text-shown-unescaped"),
        pytest.param("a%20b %41b3dE", f"a%20b {REDACTED}", id="other-escapes-kept"),
    ],
)
def test_a_secret_behind_escapes_is_redacted(text: str, expected: str) -> None:
    assert redact(text, (KEY,)) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("path%2Fto%2Ffile", id="percent-escapes-without-a-secret"),
        pytest.param("caf\\u00e9 \\u0041b3d", id="json-escapes-without-a-secret"),
        pytest.param("\\\\u0041b3dE", id="escaped-backslash-then-text"),
    ],
)
def test_escapes_without_a_secret_behind_them_are_left_as_they_are(text: str) -> None:
    assert redact(text, (KEY,)) == text


def test_only_escapes_of_characters_a_key_holds_are_read() -> None:
    # "!" (%21) is no key character: a secret holding one is not found behind that escape.
    secret = "ab!cd!ef!gh"
    assert redact("ab!cd", (secret,)) == REDACTED
    assert redact("ab%21cd%21ef", (secret,)) == "ab%21cd%21ef"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Incorrect API key provided: sk-abc***xyz.", id="asterisks"),
        pytest.param("Incorrect API key provided: sk-ROUT...QPO0.", id="dots"),
        pytest.param("Incorrect API key provided: sk-ROUT…QPO0.", id="ellipsis"),
        pytest.param("Incorrect API key provided: sk-proj-********QPO0.", id="masked-prefix"),
    ],
)
def test_a_masked_key_is_redacted_whoever_it_belongs_to(text: str) -> None:
    assert redact(text, (KEY,)) == f"Incorrect API key provided: {REDACTED}."


def test_every_run_of_a_secret_is_found_however_often_it_comes() -> None:
    run = AFTER_PREFIX[5:13]
    assert redact(f"{run} and {run}, {run}", (KEY,)) == f"{REDACTED} and {REDACTED}, {REDACTED}"


def test_a_run_is_found_where_a_block_of_it_repeats_itself() -> None:
    # "aaa" is one of this secret's blocks, and comes again one character on: the run "aaab7"
    # begins at the first "a" after the one the text starts with.
    assert redact("aaaab7K9", ("Q1Zaaab7K9mPw4",)) == f"a{REDACTED}"


@pytest.mark.parametrize(
    "text",
    ['export OPENAI_API_KEY="sk-..."', "a key looks like sk-… or sk-***.", "sk-proj-**** then a space"],
)
def test_a_placeholder_without_a_visible_end_is_not_a_masked_key(text: str) -> None:
    # The model's reply passes through the same redactor: a README's "sk-..." is text, not a key.
    assert redact(text, (KEY,)) == text
    assert redact(text, ()) == text


def test_redact_bytes_redacts_utf8() -> None:
    redactor = Redactor((KEY,))
    assert redactor.redact_bytes(f"clé {KEY} ✓".encode()) == f"clé {REDACTED} ✓".encode()
    assert redactor.redact_bytes(b"%41%62%33%64%45") == REDACTED.encode()
    assert redactor.redact_bytes(b"key sk-abc***xyz") == f"key {REDACTED}".encode()
    # Bytes that are not UTF-8 lose their secrets all the same.
    assert redactor.redact_bytes(b"\xff" + KEY.encode()) == f"\ufffd{REDACTED}".encode()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"nothing secret here", id="nothing"),
        pytest.param(b"100% sure, \\u00e9", id="escapes"),
        pytest.param(b"Ab3 and sk- alone", id="a-block-alone"),
        pytest.param(b"\xff\xfe not utf-8", id="not-utf8"),
    ],
)
def test_redact_bytes_gives_back_the_same_bytes_when_nothing_is_found(data: bytes) -> None:
    assert Redactor((KEY,)).redact_bytes(data) is data


@pytest.mark.parametrize(
    ("data", "might"),
    [
        pytest.param(b"nothing secret here", False, id="ordinary-text"),
        pytest.param(b"Ab3", True, id="a-block"),
        pytest.param(b"PO0", True, id="the-last-block"),
        pytest.param(b"\\u0041", True, id="json-escape"),
        pytest.param(b"%41", True, id="percent-escape"),
        pytest.param(b"sk-abc***xyz", True, id="masked-key"),
    ],
)
def test_might_hold(data: bytes, might: bool) -> None:
    assert Redactor((KEY,)).might_hold(data) is might


def test_might_hold_a_short_secret() -> None:
    assert Redactor(("abcd",)).might_hold(b"x abcd")
    assert not Redactor(("abcd",)).might_hold(b"x abc")


def test_no_secrets_no_redaction_but_of_masked_keys() -> None:
    redactor = Redactor((None, ""))
    assert redactor.redact("sk-proj-%41%62%33%64%45") == "sk-proj-%41%62%33%64%45"
    assert not redactor.might_hold(b"nothing here")


def test_a_redactor_is_kept_for_the_same_secrets_and_the_cache_is_bounded() -> None:
    first = redactor_for(("sk-first-0000000",))
    assert redactor_for(("sk-first-0000000",)) is first
    assert redactor_for(("sk-first-0000000",)).redact("sk-first-0000000") == REDACTED
    for number in range(1, redaction._CACHE_SIZE):
        redactor_for((f"sk-other-{number:07}",))
    assert redactor_for(("sk-first-0000000",)) is first  # the cache holds _CACHE_SIZE sets
    redactor_for(("sk-one-more-0000",))  # one set too many: the cache starts again
    assert redactor_for(("sk-first-0000000",)) is not first
