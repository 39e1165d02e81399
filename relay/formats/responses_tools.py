"""The caller's tools as a chat-only upstream sees them, and the upstream's calls told back: pure.

Chat completions has function tools only, each called by one flat name. The Responses API
also has `namespace` tools (function and custom tools grouped under a name; a call to one
carries the namespace in a field of its own: Codex refuses `"name": "ns.tool"` or
`"ns__tool"` as an unsupported call) and `custom` tools (freeform: the model writes one
string, such as a patch, no JSON). For a chat upstream each becomes a function: a namespaced
one named `{namespace}__{name}`, made to fit the names chat completions takes and never the
same as another tool's; a custom one with a single string parameter, `input`. The
`ToolNames` a request makes keeps what each function name stands for, so that the
upstream's calls become the items the caller offered: a `function_call` with its
`namespace`, a `custom_tool_call` with its input as the model wrote it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from relay.formats import jsoncodec

# What OpenAI's chat completions take as a function's name (^[a-zA-Z0-9_-]{1,64}$), and most
# OpenAI-compatible servers with it; a name the relay makes always fits.
NAME_LIMIT = 64
_UNFIT = re.compile(r"[^A-Za-z0-9_-]")
SEPARATOR = "__"
HASH_CHARACTERS = 8  # of a made name's hash: 32 bits, so two names out of a few hundred tools never meet
CUSTOM_INPUT = "input"  # the one parameter of a custom tool made a function


@dataclass(frozen=True)
class ToolRef:
    """What a chat function name stands for: the caller's tool, by its namespace and name."""

    name: str
    namespace: str | None = None
    custom: bool = False  # a custom (freeform) tool: its calls carry one string, `input`


class ToolNames:
    """Each function name a chat upstream is offered, and the caller's tool it stands for.

    Only names the relay made (namespaced tools, custom tools) are kept; a plain function keeps
    its own name, and a call to a name not kept is a plain function call.
    """

    def __init__(self) -> None:
        self._refs: dict[str, ToolRef] = {}  # chat name -> the caller's tool
        self._names: dict[tuple[str | None, str], str] = {}  # (namespace, name) -> chat name
        self._taken: set[str] = set()

    def reserve(self, name: str) -> None:
        """A plain function's own name: no made name may be the same."""
        self._taken.add(name)

    def chat_name(self, ref: ToolRef) -> str:
        """The function name the chat upstream knows this tool by, made (and kept) the first time."""
        key = (ref.namespace, ref.name)
        made = self._names.get(key)
        if made is not None:
            return made
        if ref.namespace is None:
            made = ref.name  # a custom tool keeps its name: tools of one request have distinct names
        else:
            made = _fitted(ref.namespace + SEPARATOR + ref.name)
            if len(made) > NAME_LIMIT or made in self._taken:
                digest = hashlib.sha256(f"{ref.namespace}\0{ref.name}".encode()).hexdigest()
                made = made[: NAME_LIMIT - HASH_CHARACTERS - 1] + "_" + digest[:HASH_CHARACTERS]
        self._names[key] = made
        self._refs[made] = ref
        self._taken.add(made)
        return made

    def ref(self, chat_name: str) -> ToolRef | None:
        """The caller's tool a chat function name stands for, if the relay made that name."""
        return self._refs.get(chat_name)


def _fitted(name: str) -> str:
    return _UNFIT.sub("_", name)


def custom_parameters(form: Any) -> dict[str, Any]:
    """The parameters of a custom tool made a function: one string, with its format said in words.

    A chat upstream cannot hold the model to a grammar; the model is shown it instead.
    """
    said = "The tool's input, as plain text (this is a freeform tool)."
    if isinstance(form, dict) and form.get("type") == "grammar" and isinstance(form.get("definition"), str):
        syntax = form.get("syntax")
        grammar = f"{syntax} grammar" if isinstance(syntax, str) and syntax else "grammar"
        said += f" It must follow this {grammar}:\n{form['definition']}"
    return {
        "type": "object",
        "properties": {CUSTOM_INPUT: {"type": "string", "description": said}},
        "required": [CUSTOM_INPUT],
        "additionalProperties": False,
    }


def custom_arguments(text: str) -> str:
    """A custom tool's input as the arguments of the function it was made: `{"input": text}`."""
    return jsoncodec.dumps({CUSTOM_INPUT: text}).decode()


def custom_input(arguments: str) -> str:
    """What the model wrote for a custom tool: the `input` of the arguments, or the arguments as they
    came when they are not that (never lost, never changed beyond the JSON the relay asked for)."""
    try:
        value = jsoncodec.loads(arguments)
    except jsoncodec.JSONDecodeError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get(CUSTOM_INPUT), str):
        text: str = value[CUSTOM_INPUT]
        return text
    return arguments
