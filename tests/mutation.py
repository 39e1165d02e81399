"""Mutation testing of the pure and policy modules: `./dev mutate [MODULE ...]` (slow; not part of CI).

Each module is mutated by mutmut (one small change at a time: an operator, a constant, a
condition) and its fast tests run against every mutant; a mutant the tests do not notice
"survives". It runs in a copy of the repository, so nothing here is touched but
docs/mutation-results.md, which it rewrites with the run's counts and survivors (the
recorded run; docs/mutation.md says which survivors are equivalent, and why).

  ./dev mutate                               every module below
  ./dev mutate relay/formats/sse.py          one module
"""

from __future__ import annotations

import argparse
import datetime
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "mutation-results.md"
GOAL = 90.0  # per cent of mutants killed, per module

# module -> its fast tests (no server, no network: each mutant runs them)
MODULES: dict[str, list[str]] = {
    "relay/formats/sse.py": ["tests/test_sse.py"],
    "relay/formats/encoding.py": ["tests/test_wire.py", "tests/test_chat_events.py"],
    "relay/formats/original_text.py": ["tests/test_wire.py"],
    "relay/formats/chat_events.py": ["tests/test_chat_events.py"],
    "relay/formats/chat_chunks.py": ["tests/test_chat_events.py", "tests/test_responses_translation.py"],
    "relay/formats/responses_passthrough.py": ["tests/test_chat_events.py"],
    "relay/formats/responses_events.py": ["tests/test_responses_translation.py"],
    "relay/formats/responses_object.py": ["tests/test_responses_translation.py"],
    "relay/formats/responses_items.py": ["tests/test_responses_translation.py"],
    "relay/formats/anthropic_events.py": ["tests/test_anthropic_wire.py"],
    "relay/formats/error_shapes.py": ["tests/test_anthropic_wire.py", "tests/test_writer.py"],
    "relay/formats/responses_tools.py": ["tests/test_responses_translation.py"],
    "relay/serving/writer.py": ["tests/test_writer.py"],
    "relay/access/usage.py": ["tests/test_usage.py"],
    "relay/validation/json_values.py": [
        "tests/test_chat_request.py",
        "tests/test_openai_body.py",
        "tests/test_responses_translation.py",
    ],
    "relay/validation/original_body.py": ["tests/test_chat_request.py"],
    "relay/validation/chat_body.py": ["tests/test_openai_body.py"],
    "relay/validation/responses_body.py": ["tests/test_responses_translation.py"],
    "relay/validation/responses_to_chat.py": ["tests/test_responses_translation.py"],
    "relay/validation/messages_body.py": ["tests/test_anthropic_wire.py"],
    "relay/validation/offered_tools.py": ["tests/test_responses_translation.py"],
    "relay/validation/responses_input.py": ["tests/test_responses_translation.py"],
    "relay/access/policy.py": ["tests/test_policy.py"],
    "relay/access/cors.py": ["tests/test_policy.py"],
    "relay/access/redaction.py": ["tests/test_redaction.py"],
    "relay/access/secret_forms.py": ["tests/test_redaction.py"],
    "relay/access/callers.py": ["tests/test_policy.py"],
    "relay/upstream/retry.py": ["tests/test_retry.py"],
    "relay/config/limit_settings.py": ["tests/test_limiter.py"],
    "relay/access/limiter.py": ["tests/test_limiter.py"],
    "relay/access/limits_store.py": ["tests/test_limiter.py"],
}


def run_module(module: str, tests: list[str]) -> tuple[dict[str, int], list[str]]:
    """Mutate one module in a copy of the repository; its counts and surviving mutants."""
    with tempfile.TemporaryDirectory(prefix="relay-mutate-") as workdir:
        copy = Path(workdir) / "repo"
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", "node_modules", "mutants",
                                                                   "__pycache__", ".mypy_cache", ".ruff_cache"))  # fmt: skip
        pyproject = (copy / "pyproject.toml").read_text()
        selection = ", ".join(f'"{test}"' for test in tests)
        pyproject += (
            "\n[tool.mutmut]\n"
            'source_paths = ["relay"]\n'
            f'only_mutate = ["{module}"]\n'
            f"pytest_add_cli_args_test_selection = [{selection}]\n"
            'pytest_add_cli_args = ["-p", "no:randomly", "-x", "-q", "-o", "addopts="]\n'
        )
        (copy / "pyproject.toml").write_text(pyproject)
        mutmut = str(Path(sys.executable).parent / "mutmut")
        run = subprocess.run(
            [mutmut, "run", "--max-children", "2"], cwd=copy, capture_output=True, text=True, check=False
        )
        listed = subprocess.run(
            [mutmut, "results", "--all", "true"], cwd=copy, capture_output=True, text=True, check=False
        )
        statuses: dict[str, int] = {}
        survivors: list[str] = []
        for line in listed.stdout.splitlines():
            match = re.match(r"\s*(\S+): (\w[\w ]*)$", line)
            if not match:
                continue
            name, status = match.groups()
            statuses[status] = statuses.get(status, 0) + 1
            if status in ("survived", "no tests"):
                shown = subprocess.run(
                    [mutmut, "show", name], cwd=copy, capture_output=True, text=True, check=False
                )
                diff = "\n".join(
                    line
                    for line in shown.stdout.splitlines()
                    if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
                )
                survivors.append(f"{name}{'' if status == 'survived' else ' (no tests)'}\n{diff}")
        if score(statuses) is None:  # mutmut could not run the tests: say why
            print("\n".join((run.stdout + run.stderr).splitlines()[-15:]), file=sys.stderr)
        return statuses, survivors


def score(statuses: dict[str, int]) -> float | None:
    """Per cent of mutants killed; None when no mutant was tested (a missing test file, a broken run)."""
    killed = statuses.get("killed", 0) + statuses.get("timeout", 0)
    counted = killed + statuses.get("survived", 0)
    return 100.0 * killed / counted if counted else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="relay/... files; default: all of them")
    args = parser.parse_args()
    chosen = args.modules or list(MODULES)
    unknown = [module for module in chosen if module not in MODULES]
    if unknown:
        parser.error(
            f"not a module this tool mutates: {', '.join(unknown)} (see MODULES in tests/mutation.py)"
        )
    lines = [
        "# Mutation testing: the last recorded run",
        "",
        f"`./dev mutate` on {datetime.date.today().isoformat()} (mutmut; each module against its fast tests; "
        f"goal: {GOAL:g} % killed per module). Survivors that are equivalent are explained in "
        "[mutation.md](mutation.md).",
        "",
        "| module | tests | mutants | killed | survived | other | killed % |",
        "|---|---|---|---|---|---|---|",
    ]
    details: list[str] = []
    below = []
    for module in chosen:
        print(f"mutating {module}…", flush=True)
        statuses, survivors = run_module(module, MODULES[module])
        killed = statuses.get("killed", 0) + statuses.get("timeout", 0)
        # Mutants neither killed nor survived, by mutmut's status ("no tests": no test runs that line).
        other = ", ".join(
            f"{count} {status}"
            for status, count in sorted(statuses.items())
            if status not in ("killed", "timeout", "survived")
        )
        percent = score(statuses)
        if percent is None or percent < GOAL:
            below.append(module)
        shown = "no mutant tested" if percent is None else f"{percent:.1f}"
        tests = ", ".join(Path(test).name for test in MODULES[module])
        lines.append(
            f"| {module} | {tests} | {sum(statuses.values())} | {killed} | {statuses.get('survived', 0)} "
            f"| {other or 0} | {shown} |"
        )
        print(
            f"  {shown if percent is None else shown + ' % killed'}; {len(survivors)} survived or untested",
            flush=True,
        )
        for survivor in survivors:
            print("    " + survivor.replace("\n", "\n    "), flush=True)
        if survivors:
            details += ["", f"## {module}", ""] + [f"```diff\n{survivor}\n```" for survivor in survivors]
    if set(chosen) == set(MODULES) and not any("no mutant tested" in line for line in lines):
        RESULTS.write_text("\n".join(lines + details) + "\n")
        print(f"written: {RESULTS.relative_to(ROOT)}")
    if below:
        print(f"below the goal of {GOAL:g} % (or not tested): {', '.join(below)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
