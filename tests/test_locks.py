"""The locks match what they are made from: requirements.txt and requirements-dev.txt pin, with
hashes, the whole tree of requirements.in and requirements-dev.in as those files are now.

A person edits only the .in files and runs ./dev lock, which makes both locks and heads each with
the sha256 of the files it read; these tests recompute those sums, so a .in edited without
./dev lock (or a lock edited by hand) fails here, naming the command that makes them again.
Pure file reading: no network, no resolver.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from tests.relay_server import ROOT

LOCKS = {"requirements.txt": "requirements.in", "requirements-dev.txt": "requirements-dev.in"}
RUNTIME_LOCK, DEV_LOCK = LOCKS
REMEDY = "Run ./dev lock (it makes both locks again from the .in files), then ./dev test."
SUM = re.compile(r"# sha256 ([0-9a-f]{64}) +(\S+)$")
INCLUDE = re.compile(r"-([rc])\s+(\S+)$")  # -r: its requirements are ours too; -c: only constraints


@dataclass(frozen=True)
class Pin:
    """One package of a lock: its version and the sha256 of each of its files."""

    name: str
    version: str
    hashes: frozenset[str]


def requirement_lines(text: str) -> list[str]:
    """A requirements file's logical lines: continuations joined, comments and blank lines left out."""
    joined = text.replace("\\\n", " ")
    lines = (re.sub(r"(^|\s)#.*", "", line).strip() for line in joined.splitlines())
    return [line for line in lines if line]


def pins(text: str) -> tuple[list[Pin], list[str]]:
    """A lock's packages, and a problem for each line that is not a package pinned with hashes."""
    found, problems = [], []
    for line in requirement_lines(text):
        hashes = frozenset(re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
        requirement = re.sub(r"--hash=\S+", "", line).strip()
        try:
            parsed = Requirement(requirement)
        except InvalidRequirement:
            problems.append(f"a line that is not a requirement: {line[:80]!r}")
            continue
        exact = [spec.version for spec in parsed.specifier if spec.operator == "=="]
        if len(parsed.specifier) != 1 or not exact:
            problems.append(f"{requirement!r} is not pinned to one version (name==version)")
        elif not hashes:
            problems.append(f"{requirement!r} has no --hash: pip would install whatever file it is given")
        else:
            found.append(Pin(canonicalize_name(parsed.name), exact[0], hashes))
    return found, problems


def includes(path: Path) -> list[tuple[str, str]]:
    """The files a .in names, as (r or c, file name), in order."""
    return [
        (match[1], match[2]) for line in requirement_lines(path.read_text()) if (match := INCLUDE.match(line))
    ]


def direct_requirements(path: Path) -> list[Requirement]:
    """What a .in asks for, with what its -r files ask for (its -c files only constrain)."""
    found = []
    for line in requirement_lines(path.read_text()):
        if match := INCLUDE.match(line):
            if match[1] == "r":
                found += direct_requirements(path.parent / match[2])
        else:
            found.append(Requirement(line))
    return found


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lock_problems(root: Path, lock: str) -> list[str]:
    """Why LOCK is not what ./dev lock would make from the files in ROOT now (empty: it is)."""
    source = LOCKS[lock]
    text = (root / lock).read_text()
    recorded = {match[2]: match[1] for line in text.splitlines() if (match := SUM.match(line))}
    read = [source] + [name for _, name in includes(root / source)]
    problems = []
    if sorted(recorded) != sorted(read):
        problems.append(
            f"{lock} records the sums of {sorted(recorded)}, not of the files it is made from, {read}"
        )
    for name in read:
        if name in recorded and recorded[name] != sha256(root / name):
            problems.append(f"{lock} was made from another {name} than the one here (edited since?)")
    found, unpinned = pins(text)
    problems += [f"{lock}: {problem}" for problem in unpinned]
    versions: dict[str, set[str]] = {}
    for pin in found:
        versions.setdefault(pin.name, set()).add(pin.version)
    for requirement in direct_requirements(root / source):
        name = canonicalize_name(requirement.name)
        locked = versions.get(name, set())
        if not any(requirement.specifier.contains(version, prereleases=True) for version in locked):
            has = ", ".join(sorted(locked)) or "none"
            problems.append(f"{source} asks for {requirement}; {lock} has {has} of {name}")
    return problems


def disagreements(root: Path) -> list[str]:
    """Packages the runtime's lock and the dev lock pin differently (the tests would not run what deploys)."""
    dev = {(pin.name, pin.version): pin.hashes for pin in pins((root / DEV_LOCK).read_text())[0]}
    problems = []
    for pin in pins((root / RUNTIME_LOCK).read_text())[0]:
        if (pin.name, pin.version) not in dev:
            problems.append(f"{RUNTIME_LOCK} pins {pin.name}=={pin.version}, {DEV_LOCK} does not")
        elif dev[pin.name, pin.version] != pin.hashes:
            problems.append(
                f"{pin.name}=={pin.version} has other hashes in {DEV_LOCK} than in {RUNTIME_LOCK}"
            )
    return problems


def all_problems(root: Path) -> list[str]:
    return [*lock_problems(root, RUNTIME_LOCK), *lock_problems(root, DEV_LOCK), *disagreements(root)]


@pytest.mark.parametrize("lock", LOCKS)
def test_the_lock_is_made_from_the_files_there_now(lock: str) -> None:
    problems = lock_problems(ROOT, lock)
    assert not problems, "\n".join([*problems, REMEDY])


def test_the_dev_lock_pins_the_runtime_as_the_runtime_lock_does() -> None:
    problems = disagreements(ROOT)
    assert not problems, "\n".join([*problems, REMEDY])


def test_every_package_of_the_runtime_is_locked() -> None:
    # The deploy installs requirements.txt alone: what the function imports must be there with
    # what that needs in turn, not only the direct pins (h11 comes with httpcore, greenlet with gevent).
    names = {pin.name for pin in pins((ROOT / RUNTIME_LOCK).read_text())[0]}
    assert {"functions-framework", "gevent", "greenlet", "h11", "httpcore", "zope-interface"} <= names


# Each edit a lock must not survive, made to a copy of the files: the checks above can fail.
def edit_source(root: Path) -> None:
    with (root / "requirements.in").open("a") as file:
        file.write("# a comment is an edit too: the lock says which file it was made from\n")


def strip_hashes(root: Path) -> None:
    lock = root / RUNTIME_LOCK
    lock.write_text(re.sub(r"(flask==\S+) \\\n(\s+--hash=\S+ \\\n)*\s+--hash=\S+", r"\1", lock.read_text()))


def forge_the_sum(root: Path) -> None:
    # Another flask pinned in requirements.in, and the lock's sum of it forged to match.
    source = root / "requirements.in"
    old = sha256(source)
    source.write_text(re.sub(r"flask==\S+", "flask==3.0.0", source.read_text()))
    for lock in LOCKS:
        path = root / lock
        path.write_text(path.read_text().replace(old, sha256(source)))


def unpin_in_dev(root: Path) -> None:
    lock = root / DEV_LOCK
    lock.write_text(re.sub(r"^h11==\S+", "h11==0.1.0", lock.read_text(), flags=re.MULTILINE))


@pytest.mark.parametrize(
    ("edit", "caught"),
    [
        pytest.param(
            edit_source, r"was made from another requirements\.in than the one here", id="edited-in"
        ),
        pytest.param(strip_hashes, r"'flask==\S+' has no --hash", id="no-hashes"),
        pytest.param(forge_the_sum, r"requirements\.in asks for flask==3\.0\.0;", id="forged-sum"),
        pytest.param(unpin_in_dev, r"pins h11==\S+, requirements-dev\.txt does not", id="dev-disagrees"),
    ],
)
def test_an_edit_the_locks_do_not_match_is_caught(
    tmp_path: Path, edit: Callable[[Path], None], caught: str
) -> None:
    for name in [*LOCKS, *LOCKS.values()]:
        shutil.copy2(ROOT / name, tmp_path / name)
    assert not all_problems(tmp_path), REMEDY  # the copy is sound before the edit
    edit(tmp_path)
    problems = all_problems(tmp_path)
    assert any(re.search(caught, problem) for problem in problems), problems
