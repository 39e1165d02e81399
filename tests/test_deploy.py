"""The deploy scripts and cloudbuild.yaml, checked offline: the exact gcloud commands they would run."""

from __future__ import annotations

import atexit
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pathspec
import pytest
import yaml

from relay.config import load_settings
from tests.relay_server import ROOT, base_environ, shipped_server_env
from tests.test_locks import edit_source, pins, strip_hashes

DEPLOY = ROOT / "deploy"
SCRIPTS = ["function.sh", "run.sh"]

# Unless a test puts its own on PATH (a stand-in that answers, or none at all), the scripts find
# this gcloud, which is never logged in: whether the machine has one, and whose, changes nothing.
NOT_LOGGED_IN = Path(tempfile.mkdtemp(prefix="deploy-tests-bin-"))
atexit.register(shutil.rmtree, NOT_LOGGED_IN, ignore_errors=True)
(NOT_LOGGED_IN / "gcloud").write_text(
    "#!/bin/sh\necho 'ERROR: (gcloud) You do not currently have an active account selected.' >&2\nexit 1\n"
)
(NOT_LOGGED_IN / "gcloud").chmod(0o755)


def run_script(
    name: str, *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    environ = base_environ()
    environ["PATH"] = f"{NOT_LOGGED_IN}{os.pathsep}{environ['PATH']}"
    return subprocess.run(
        ["bash", str(DEPLOY / name), *args],
        cwd=ROOT,
        env={**environ, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def dry_run(name: str, *args: str, env: dict[str, str] | None = None) -> list[list[str]]:
    """The gcloud commands the script prints with --dry-run, each split as a shell would."""
    completed = run_script(name, "--dry-run", "--project", "demo-project", *args, env=env)
    assert completed.returncode == 0, completed.stderr
    return [shlex.split(line) for line in completed.stdout.splitlines() if line and not line.startswith("#")]


def flags(command: list[str]) -> dict[str, str]:
    """--name=value and bare --name flags of a command."""
    parsed = {}
    for word in command:
        if word.startswith("--"):
            name, _, value = word.partition("=")
            parsed[name] = value
    return parsed


def env_vars(command: list[str]) -> dict[str, str]:
    value = flags(command)["--set-env-vars"]
    assert value.startswith("^|^")  # gcloud's alternate separator, so values may hold commas
    return dict(pair.split("=", 1) for pair in value[3:].split("|"))


def secrets(command: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in flags(command)["--set-secrets"].split(","))


def commands(stdout: str) -> list[list[str]]:
    """The gcloud commands a --dry-run printed, each split as a shell would (comments left out)."""
    return [shlex.split(line) for line in stdout.splitlines() if line and not line.startswith("#")]


def from_common_sh(expression: str) -> list[str]:
    """What deploy/common.sh defines, read by sourcing it in a clean shell: one value a line."""
    completed = subprocess.run(
        ["bash", "-c", f'source deploy/common.sh && printf "%s\\n" {expression}'],
        cwd=ROOT,
        env=base_environ(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return completed.stdout.splitlines()


def test_function_deploy_command() -> None:
    deploy, describe = dry_run("function.sh")
    assert deploy[:4] == ["gcloud", "functions", "deploy", "openai-stream-relay"]
    options = flags(deploy)
    assert "--gen2" in options  # 1st gen cannot stream
    assert options["--entry-point"] == "chat"
    assert options["--runtime"] == "python312"
    assert "--trigger-http" in options
    assert options["--source"] == "."
    assert options["--project"] == "demo-project"
    assert describe[:3] == ["gcloud", "functions", "describe"]


def test_run_deploy_command() -> None:
    deploy, describe = dry_run("run.sh")
    assert deploy[:4] == ["gcloud", "run", "deploy", "openai-stream-relay"]
    options = flags(deploy)
    assert options["--source"] == "."
    assert options["--function"] == "chat"
    assert options["--base-image"] == "python312"
    assert describe[:4] == ["gcloud", "run", "services", "describe"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_same_settings_on_both_targets(script: str) -> None:
    deploy = dry_run(script)[0]
    options = flags(deploy)
    shipped = shipped_server_env()
    # One worker process per vCPU; THREADS (gevent's connections per worker) equal to the concurrency.
    assert options["--cpu"] == shipped["WORKERS"]
    assert options["--concurrency"] == shipped["THREADS"] == env_vars(deploy)["THREADS"]
    assert {name: env_vars(deploy)[name] for name in shipped} == shipped
    assert env_vars(deploy)["GOOGLE_CLOUD_PROJECT"] == "demo-project"
    assert options["--min-instances"] == "0"  # scales to zero: nothing to pay at rest
    assert [options["--memory"]] == from_common_sh("$MEMORY")  # the default, wherever it is set
    assert options["--service-account"] == "relay-runtime@demo-project.iam.gserviceaccount.com"


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize(
    ("settings", "longest"),
    [
        ({}, 900 + 60),
        ({"STREAM_MAX_SECONDS": "3000", "UPSTREAM_IDLE_TIMEOUT": "30"}, 3030),
        ({"STREAM_MAX_SECONDS": "300", "UPSTREAM_FIRST_BYTE_TIMEOUT": "600"}, 10 + 600 + 60),
    ],
)
def test_timeout_covers_the_longest_stream(script: str, settings: dict[str, str], longest: int) -> None:
    deploy = dry_run(script, env=settings)[0]
    timeout = int(flags(deploy)["--timeout"].removesuffix("s"))
    assert longest < timeout <= 3600
    for name, value in settings.items():
        assert env_vars(deploy)[name] == value  # the relay enforces the same cap


@pytest.mark.parametrize("script", SCRIPTS)
def test_secrets_only_through_secret_manager(script: str) -> None:
    completed = run_script(
        script,
        "--dry-run",
        "--project=demo-project",
        env={"OPENAI_API_KEY": "sk-in-the-shell-123", "ACCESS_TOKENS": "tok-in-the-shell-456"},
    )
    assert completed.returncode == 0
    assert "sk-in-the-shell-123" not in completed.stdout + completed.stderr
    assert "tok-in-the-shell-456" not in completed.stdout + completed.stderr
    assert "is NOT deployed as a plain variable" in completed.stderr
    deploy = commands(completed.stdout)[0]
    # (The gcloud here is not logged in, so the versions cannot be looked up: --dry-run shows
    # :latest, and says that a deploy would stop.)
    assert secrets(deploy) == {
        "OPENAI_API_KEY": "relay-openai-api-key:latest",
        "ACCESS_TOKENS": "relay-access-tokens:latest",
    }
    assert completed.stderr.count("A deploy would stop here; --dry-run shows it as :latest.") == 2
    assert not {"OPENAI_API_KEY", "ACCESS_TOKENS"} & set(env_vars(deploy))


@pytest.fixture
def path_with_all_but_gcloud(tmp_path: Path) -> str:
    """A PATH with every command this one has, but gcloud."""
    bin_dir = tmp_path / "all-but-gcloud"
    bin_dir.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        for found in sorted(Path(folder).glob("*")) if Path(folder).is_dir() else []:
            link = bin_dir / found.name
            if found.name != "gcloud" and not link.exists() and os.access(found, os.X_OK):
                link.symlink_to(found)
    return str(bin_dir)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_dry_run_without_gcloud_says_the_versions_were_not_looked_up(
    script: str, path_with_all_but_gcloud: str
) -> None:
    completed = run_script(
        script, "--dry-run", "--project=demo-project", env={"PATH": path_with_all_but_gcloud}
    )
    assert completed.returncode == 0, completed.stderr
    assert "warning: gcloud is not here, so --dry-run shows each secret as :latest" in completed.stderr
    assert set(secrets(commands(completed.stdout)[0]).values()) == {
        "relay-openai-api-key:latest",
        "relay-access-tokens:latest",
    }


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "deploy"])
def test_each_secret_is_mounted_at_its_newest_enabled_version(
    script: str, dry: bool, fake_gcloud: tuple[dict[str, str], Path]
) -> None:
    env, state = fake_gcloud
    # The key: versions 1 and 2 enabled, 3 disabled (a rotation undone); the tokens: one version.
    seed_secrets(
        state, **{"relay-openai-api-key": "ENABLED ENABLED DISABLED", "relay-x-key": "DISABLED ENABLED"}
    )
    shell = {**env, "EXTRA_SECRETS": "X_API_KEY=relay-x-key"}
    completed = run_script(script, "--project=demo-project", *(["--dry-run"] if dry else []), env=shell)
    assert completed.returncode == 0, completed.stderr
    pinned = {
        "OPENAI_API_KEY": "relay-openai-api-key:2",
        "ACCESS_TOKENS": "relay-access-tokens:1",
        "X_API_KEY": "relay-x-key:2",
    }
    if dry:
        deploy = commands(completed.stdout)[0]
    else:
        deploy = [
            "gcloud",
            *shlex.split(next(call for call in gcloud_calls(state) if " deploy " in f" {call} ")),
        ]
    assert secrets(deploy) == pinned
    assert ":latest" not in " ".join(deploy)
    lookups = [secret_lookup(name) for name in ("relay-openai-api-key", "relay-access-tokens", "relay-x-key")]
    assert [call for call in gcloud_calls(state) if call.startswith("secrets ")] == lookups
    assert (
        "Secret versions this deploy mounts (the newest enabled of each): "
        "OPENAI_API_KEY=relay-openai-api-key version 2, ACCESS_TOKENS=relay-access-tokens version 1, "
        "X_API_KEY=relay-x-key version 2." in completed.stderr
    )


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize(
    ("versions", "message"),
    [
        pytest.param({}, "could not list the versions of the secret 'relay-access-tokens'", id="missing"),
        pytest.param(
            {"relay-access-tokens": "DISABLED"},
            "the secret 'relay-access-tokens' (ACCESS_TOKENS) has no enabled version in demo-project",
            id="none-enabled",
        ),
    ],
)
def test_a_secret_without_an_enabled_version_deploys_nothing(
    script: str, versions: dict[str, str], message: str, fake_gcloud: tuple[dict[str, str], Path]
) -> None:
    env, state = fake_gcloud
    seed_secrets(state, **versions)
    if not versions:
        for path in state.glob("*relay-access-tokens"):
            path.unlink()
    completed = run_script(script, "--project=demo-project", env=env)
    assert completed.returncode == 1
    assert f"error: {message}" in completed.stderr
    assert "Nothing was deployed." in completed.stderr
    assert changes(state) == []  # only the read-only lookups ran
    # --dry-run shows the rest of the command, and says that a deploy would stop there.
    completed = run_script(script, "--project=demo-project", "--dry-run", env=env)
    assert completed.returncode == 0, completed.stderr
    assert f"warning: {message}" in completed.stderr
    assert "A deploy would stop here; --dry-run shows it as :latest." in completed.stderr
    assert secrets(commands(completed.stdout)[0])["ACCESS_TOKENS"] == "relay-access-tokens:latest"


@pytest.mark.parametrize("script", SCRIPTS)
def test_relay_settings_are_passed_on(script: str) -> None:
    settings = {
        "ALLOWED_ORIGINS": "https://chat.example.com,http://localhost:5173",
        "ALLOWED_MODELS": "gpt-4o-mini,gpt-4.1-*",
        "OPENAI_BASE_URL": "https://openrouter.ai/api/v1",
        "MAX_TOKENS_LIMIT": "4096",
    }
    deploy = dry_run(script, env=settings)[0]
    assert {name: env_vars(deploy)[name] for name in settings} == settings


# How each target's gcloud command makes the URL public, or private to IAM. Cloud Run's invoker IAM
# check turned off is Google's recommended public service, and works where an organisation policy
# forbids granting roles to allUsers; private turns it on and removes an allUsers grant an older
# deploy made. `gcloud functions deploy` has no such flag: only the allUsers grant.
ACCESS_FLAGS = {
    "run.sh": {
        "public": ["--no-invoker-iam-check"],
        "private": ["--invoker-iam-check", "--no-allow-unauthenticated"],
    },
    "function.sh": {"public": ["--allow-unauthenticated"], "private": ["--no-allow-unauthenticated"]},
}
ALL_ACCESS_FLAGS = {
    "--allow-unauthenticated",
    "--no-allow-unauthenticated",
    "--invoker-iam-check",
    "--no-invoker-iam-check",
}


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize(
    ("args", "access", "warned"),
    [
        pytest.param([], "public", False, id="tokens-public-url"),
        pytest.param(["--private"], "private", False, id="tokens-and-iam"),
        pytest.param(["--no-access-tokens"], "private", False, id="no-tokens-private"),
        pytest.param(["--no-access-tokens", "--public"], "public", True, id="no-tokens-public-asked"),
    ],
)
def test_public_access_only_with_tokens_or_when_asked(
    script: str, args: list[str], access: str, warned: bool
) -> None:
    completed = run_script(script, "--dry-run", "--project=demo-project", *args)
    assert completed.returncode == 0
    deploy = commands(completed.stdout)[0]
    assert [word for word in deploy if word in ALL_ACCESS_FLAGS] == ACCESS_FLAGS[script][access]
    assert ("ANYONE WHO FINDS THE URL CAN SPEND YOUR OPENAI KEY" in completed.stderr) == warned
    assert ("ACCESS_TOKENS" in secrets(deploy)) == ("--no-access-tokens" not in args)


def test_a_public_cloud_run_url_grants_nothing_to_all_users() -> None:
    """run.sh's public URL is the invoker check turned off, never a grant to allUsers."""
    for args in ([], ["--no-access-tokens", "--public"]):
        deploy = dry_run("run.sh", *args)[0]
        assert "--no-invoker-iam-check" in deploy
        assert "--allow-unauthenticated" not in deploy
    docs = (ROOT / "docs" / "deploy.md").read_text()
    assert "--no-invoker-iam-check" in docs
    assert "https://cloud.google.com/run/docs/authenticating/public" in docs


@pytest.fixture
def path_without_gcloud(tmp_path: Path) -> str:
    """A PATH with the tools the scripts use, and no gcloud."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "sed", "awk", "cat"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


@pytest.mark.parametrize("script", ["setup.sh", *SCRIPTS])
def test_missing_gcloud_is_a_clear_error(script: str, path_without_gcloud: str) -> None:
    completed = run_script(script, "--project=demo-project", env={"PATH": path_without_gcloud})
    assert completed.returncode == 1
    assert "error: gcloud is not installed or not on PATH" in completed.stderr


@pytest.mark.parametrize("script", ["setup.sh", *SCRIPTS])
def test_missing_project_is_a_clear_error(script: str, path_without_gcloud: str) -> None:
    completed = run_script(script, "--dry-run", env={"PATH": path_without_gcloud})
    assert completed.returncode == 1
    assert "error: no Google Cloud project: pass --project PROJECT_ID" in completed.stderr


@pytest.mark.parametrize("script", ["setup.sh", *SCRIPTS])
def test_unknown_option_and_help(script: str) -> None:
    completed = run_script(script, "--dry-run", "--project=p", "--bogus")
    assert completed.returncode == 1
    assert "unknown option '--bogus'" in completed.stderr
    assert "Usage: deploy/" in run_script(script, "--help").stdout


@pytest.mark.parametrize(
    "flag",
    [
        "--region=europe-west1",
        "--name=x",
        "--memory=1Gi",
        "--max-instances=3",
        "--public",
        "--private",
        "--allowed-models=gpt-4o-mini",
        "--max-tokens-limit=4096",
        "--allowed-origins=https://chat.example.com",
        "--network=relay-vpc",
        "--subnet=relay-subnet",
    ],
)
def test_setup_refuses_a_deploy_option_instead_of_ignoring_it(flag: str) -> None:
    completed = run_script("setup.sh", "--dry-run", "--project=p", flag)
    assert completed.returncode == 1
    name = flag.partition("=")[0]
    assert (
        f"error: {name} is an option of deploy/function.sh and deploy/run.sh, not of setup"
        in completed.stderr
    )
    assert "gcloud" not in completed.stdout
    # The deploy scripts take it.
    assert run_script("run.sh", "--dry-run", "--project=p", flag, stdin="").returncode == 0


def test_stream_cap_over_the_platform_limit_is_refused() -> None:
    completed = run_script("run.sh", "--dry-run", "--project=p", env={"STREAM_MAX_SECONDS": "3590"})
    assert completed.returncode == 1
    assert "over the platform's 3600 s limit" in completed.stderr


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"STREAM_MAX_SECONDS": "3000", "UPSTREAM_IDLE_TIMEOUT": "30"},
        {
            "STREAM_MAX_SECONDS": "300",
            "UPSTREAM_FIRST_BYTE_TIMEOUT": "600",
            "UPSTREAM_CONNECT_TIMEOUT": "2.5",
        },
    ],
)
@pytest.mark.parametrize("script", SCRIPTS)
def test_deploy_timeout_is_the_relays_longest_request_plus_a_minute(
    script: str, settings: dict[str, str]
) -> None:
    deploy = dry_run(script, env=settings)[0]
    longest = load_settings(settings).longest_request_seconds
    assert int(flags(deploy)["--timeout"].removesuffix("s")) == math.ceil(longest + 60)


# -- setup.sh, run for real against a stand-in gcloud -------------------------------------------

FAKE_GCLOUD = """#!/usr/bin/env bash
# Records each call, and says so on standard error (where the scripts report, so the order shows);
# "describe" succeeds for what an earlier call created.
state="$FAKE_GCLOUD_STATE"
printf '%s\\n' "$*" >>"$state/calls"
echo "fake-gcloud: $1 $2 $3" >&2
case "$*" in *add-iam-policy-binding*)
  # FAKE_GCLOUD_FAIL_BINDINGS=N: the first N grants fail, as for an account IAM does not see yet.
  failed=$(cat "$state/failed-bindings" 2>/dev/null || echo 0)
  if [ "$failed" -lt "${FAKE_GCLOUD_FAIL_BINDINGS:-0}" ]; then
    echo $((failed + 1)) >"$state/failed-bindings"
    echo "ERROR: Service account does not exist." >&2
    exit 1
  fi ;;
esac
case "$1 $2" in
  "config get-value") [ -z "${FAKE_GCLOUD_CONFIG_PROJECT:-}" ] || echo "$FAKE_GCLOUD_CONFIG_PROJECT" ;;
  "secrets describe") [ -e "$state/secret-$3" ] ;;
  "secrets create")
    cat >"$state/secret-$3"; printf '%s\\n' "$3" >>"$state/stored"; echo "1 ENABLED" >"$state/versions-$3" ;;
  "secrets versions")
    # versions-NAME: one "NUMBER STATE" line per version, oldest first.
    case "$3" in
      add)
        cat >>"$state/secret-$4"; printf '%s\\n' "$4" >>"$state/stored"
        echo "$(($(wc -l <"$state/versions-$4") + 1)) ENABLED" >>"$state/versions-$4" ;;
      list)
        if [ ! -e "$state/versions-$4" ]; then echo "ERROR: NOT_FOUND: Secret [$4] not found." >&2; exit 1; fi
        # As gcloud would: all states unless --filter=state:ENABLED, oldest first unless --sort-by=~createTime.
        wanted='.'; order=cat
        case "$*" in *--filter=state:ENABLED*) wanted='ENABLED' ;; esac
        case "$*" in *--sort-by=~createTime*) order='sort -rn' ;; esac
        awk -v wanted="$wanted" '$2 ~ wanted {print $1}' "$state/versions-$4" | $order |
          while read -r n; do printf 'projects/123456789/secrets/%s/versions/%s\\n' "$4" "$n"; done ;;
    esac ;;
  "iam service-accounts")
    case "$3" in
      describe) [ -e "$state/account-${4%%@*}" ] ;;
      create) touch "$state/account-$4" ;;
    esac ;;
  "storage buckets")
    case "$3" in
      describe) [ -e "$state/bucket-${4#gs://}" ] ;;
      create) touch "$state/bucket-${4#gs://}" ;;
    esac ;;
  "redis instances")
    case "$3" in
      describe) [ -e "$state/redis-$4" ] && cat "$state/redis-$4" ;;
      create)
        for arg in "$@"; do
          case "$arg" in --project=*) project=${arg#*=} ;; --network=*) network=${arg#*=} ;; esac
        done
        printf '10.20.30.40\\t6379\\tprojects/%s/global/networks/%s\\n' "$project" "$network" >"$state/redis-$4" ;;
    esac ;;
  "run services" | "functions describe") echo "https://openai-stream-relay.example.run.app" ;;
esac
"""


@pytest.fixture
def fake_gcloud(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The environment that puts FAKE_GCLOUD first on PATH, and the folder where it records."""
    bin_dir = tmp_path / "bin"
    state = tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(FAKE_GCLOUD)
    gcloud.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_GCLOUD_STATE": str(state)}, state


def gcloud_calls(state: Path) -> list[str]:
    """What the stand-in gcloud was asked, one call a line ("$*"), in order."""
    calls = state / "calls"
    return calls.read_text().splitlines() if calls.exists() else []


def seed_secrets(state: Path, **versions: str) -> None:
    """Secrets as setup.sh leaves them, for the stand-in gcloud: each name's versions, oldest first.

    By default the key and the tokens, one enabled version each; a value such as
    "ENABLED ENABLED DISABLED" gives a secret three versions in those states.
    """
    versions = {"relay-openai-api-key": "ENABLED", "relay-access-tokens": "ENABLED", **versions}
    for name, states in versions.items():
        (state / f"secret-{name}").write_text("value")
        lines = [f"{number} {word}" for number, word in enumerate(states.split(), start=1)]
        (state / f"versions-{name}").write_text("".join(line + "\n" for line in lines))


def secret_lookup(name: str, project: str = "demo-project") -> str:
    """The read-only call each deploy makes for a secret's newest enabled version."""
    return (
        f"secrets versions list {name} --project={project} --filter=state:ENABLED "
        "--sort-by=~createTime --format=value(name)"
    )


def changes(state: Path) -> list[str]:
    """The stand-in gcloud's calls less the read-only lookups (of secrets' versions, of Redis)."""
    return [
        call
        for call in gcloud_calls(state)
        if not call.startswith(("secrets versions list", "redis instances describe"))
    ]


def test_setup_is_safe_to_run_twice_and_keeps_secrets_off_the_command_line(
    fake_gcloud: tuple[dict[str, str], Path],
) -> None:
    env, state = fake_gcloud

    first = run_script(
        "setup.sh",
        "--project=demo-project",
        env=env,
        stdin="sk-SETUP-KEY-1\ntok-SETUP-A-0123456789,tok-SETUP-B-0123456789\n",
    )
    assert first.returncode == 0, first.stderr
    assert (state / "secret-relay-openai-api-key").read_text() == "sk-SETUP-KEY-1"
    assert (
        state / "secret-relay-access-tokens"
    ).read_text() == "tok-SETUP-A-0123456789,tok-SETUP-B-0123456789"
    calls = (state / "calls").read_text()
    assert "services enable" in calls
    assert "iam service-accounts create relay-runtime" in calls
    assert "iam service-accounts create relay-build" in calls
    assert calls.count("roles/secretmanager.secretAccessor") == 2
    for secret in ("sk-SETUP-KEY-1", "tok-SETUP-A-0123456789"):
        assert secret not in calls  # values go through standard input only
        assert secret not in first.stdout + first.stderr

    # Again, keeping both secrets (empty lines): nothing new is stored, nothing fails.
    second = run_script("setup.sh", "--project=demo-project", env=env, stdin="\n\n")
    assert second.returncode == 0, second.stderr
    assert (state / "stored").read_text().split() == ["relay-openai-api-key", "relay-access-tokens"]
    for account in ("relay-runtime", "relay-build"):  # each created once, on the first run
        assert (state / "calls").read_text().count(f"iam service-accounts create {account} ") == 1

    # Again, with a new key: a new version of the same secret.
    third = run_script("setup.sh", "--project=demo-project", env=env, stdin="sk-SETUP-KEY-2\n\n")
    assert third.returncode == 0, third.stderr
    assert (state / "secret-relay-openai-api-key").read_text() == "sk-SETUP-KEY-1sk-SETUP-KEY-2"


def test_setup_without_a_key_the_first_time_fails_clearly(fake_gcloud: tuple[dict[str, str], Path]) -> None:
    env, _ = fake_gcloud
    completed = run_script("setup.sh", "--project=demo-project", env=env, stdin="")
    assert completed.returncode == 1
    assert "no OpenAI API key on standard input" in completed.stderr


def test_setup_dry_run_reads_no_secret() -> None:
    completed = run_script("setup.sh", "--dry-run", "--project=demo-project", stdin="sk-NOT-READ\n")
    assert completed.returncode == 0
    assert "sk-NOT-READ" not in completed.stdout
    commands = [line for line in completed.stdout.splitlines() if not line.startswith("#")]
    assert any("secrets create relay-openai-api-key" in line and "--data-file=-" in line for line in commands)


# -- cloudbuild.yaml, shellcheck, .gcloudignore -------------------------------------------------


def tool(name: str) -> str:
    """A command installed by requirements-dev.txt, from this test run's own environment."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is missing: install requirements-dev.txt"
    return str(path)


def test_cloudbuild_validates_against_the_schema() -> None:
    completed = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.cloudbuild", "cloudbuild.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_cloudbuild_tests_then_deploys_with_the_deploy_scripts() -> None:
    build = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    test, deploy = build["steps"]
    assert test["name"].startswith("python:3.12")
    readme_test_command = "./dev test"
    assert readme_test_command in (ROOT / "README.md").read_text()
    # CI's own script: it installs what the tests drive (Chromium, Redis, Node), then runs that command.
    assert test["args"] == ["-c", ".ci/run"]
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith(readme_test_command)
    assert deploy["name"].startswith("gcr.io/google.com/cloudsdktool/google-cloud-cli:")
    assert deploy["waitFor"] == [test["id"]]
    assert deploy["args"][0] == "deploy/${_TARGET}.sh"
    assert set(build["substitutions"]) == {
        "_TARGET",
        "_REGION",
        "_SERVICE",
        "_KEY_SECRET",
        "_TOKENS_SECRET",
        "_REDIS_INSTANCE",
    }
    assert {f"deploy/{target}.sh" for target in ("function", "run")} <= {
        str(p.relative_to(ROOT)) for p in DEPLOY.iterdir()
    }
    assert build["substitutions"]["_TARGET"] in ("function", "run")
    assert build["options"]["logging"]


def test_scripts_pass_shellcheck() -> None:
    scripts = [str(path) for path in DEPLOY.glob("*.sh")] + [str(ROOT / "dev"), str(ROOT / ".ci" / "run")]
    # Debian's, which .ci/run installs, else the one requirements-dev.txt brings.
    shellcheck = shutil.which("shellcheck") or tool("shellcheck")
    completed = subprocess.run(
        [shellcheck, "-x", *scripts],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout


def uploaded_files() -> set[str]:
    """The files `gcloud ... --source .` would upload, by .gcloudignore's gitignore rules.

    Walked on disk, not asked of git: Cloud Build runs the tests in a tree without .git.
    """
    spec = pathspec.GitIgnoreSpec.from_lines((ROOT / ".gcloudignore").read_text().splitlines())
    local = {".git", ".venv", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", "__pycache__"}
    files = set()
    for folder, folders, names in os.walk(ROOT):
        folders[:] = [name for name in folders if name not in local]  # not walked at all
        for name in names:
            relative = (Path(folder) / name).relative_to(ROOT).as_posix()
            if not spec.match_file(relative):
                files.add(relative)
    return files


def test_gcloudignore_uploads_only_the_runtime() -> None:
    uploaded = uploaded_files()
    assert {
        "main.py",
        "requirements.txt",
        "relay/config/__main__.py",  # (it was relay/handler.py; any module of the package serves)
        "relay/__init__.py",
        "relay/static/index.html",
    } <= uploaded
    assert all(path in ("main.py", "requirements.txt") or path.startswith("relay/") for path in uploaded), (
        uploaded
    )
    assert not any(path.endswith(".pyc") for path in uploaded)
    # The build installs the uploaded requirements.txt: a lock, every requirement pinned with hashes.
    locked, problems = pins((ROOT / "requirements.txt").read_text())
    assert len(locked) > 10 and not problems, problems


@pytest.mark.parametrize("script", SCRIPTS)
def test_route_keys_come_from_secret_manager_too(script: str) -> None:
    upstreams = '[{"prefix": "openrouter/", "base_url": "https://openrouter.ai/api/v1", "key_env": "OPENROUTER_API_KEY"}]'
    deploy = dry_run(
        script, env={"UPSTREAMS": upstreams, "EXTRA_SECRETS": "OPENROUTER_API_KEY=relay-openrouter-key"}
    )[0]
    assert env_vars(deploy)["UPSTREAMS"] == upstreams
    assert secrets(deploy)["OPENROUTER_API_KEY"] == "relay-openrouter-key:latest"


def repo_copy(tmp_path: Path) -> Path:
    """deploy/ and the requirements copied (so a test may edit them), with the real relay/ beside them."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "deploy", copy / "deploy")
    (copy / "relay").symlink_to(ROOT / "relay", target_is_directory=True)
    for name in ("requirements.in", "requirements.txt"):
        shutil.copy2(ROOT / name, copy / name)
    return copy


def test_committed_relay_settings_are_deployed_and_the_shell_wins(tmp_path: Path) -> None:
    copy = repo_copy(tmp_path)
    (copy / "deploy" / "relay.env").write_text(
        "# the owner's\nALLOWED_MODELS=gpt-4o-mini\nMAX_TOKENS_LIMIT=4096\n"
    )
    completed = subprocess.run(
        ["bash", str(copy / "deploy" / "run.sh"), "--dry-run", "--project=p"],
        env={**base_environ(), "MAX_TOKENS_LIMIT": "100"},
        capture_output=True,
        text=True,
        check=True,
    )
    deployed = env_vars(commands(completed.stdout)[0])
    assert (deployed["ALLOWED_MODELS"], deployed["MAX_TOKENS_LIMIT"]) == ("gpt-4o-mini", "100")

    (copy / "deploy" / "relay.env").write_text("OPENAI_API_KEY=sk-in-a-file\n")
    completed = subprocess.run(
        ["bash", str(copy / "deploy" / "run.sh"), "--dry-run", "--project=p"],
        env=base_environ(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1
    assert "not one of the relay's settings" in completed.stderr
    assert "sk-in-a-file" not in completed.stdout + completed.stderr


def test_setup_refuses_a_malformed_extra_secret_before_any_step() -> None:
    completed = run_script("setup.sh", "--dry-run", "--project=p", env={"EXTRA_SECRETS": "BADPAIR"})
    assert completed.returncode == 1
    assert "EXTRA_SECRETS items are VARIABLE=secret-name, got 'BADPAIR'" in completed.stderr
    assert "gcloud" not in completed.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ALLOWED_ORIGINS": "https://a.example|x"}, "ALLOWED_ORIGINS must not contain '|'"),
        ({"EXTRA_SECRETS": "BADPAIR"}, "EXTRA_SECRETS items are VARIABLE=secret-name"),
    ],
)
@pytest.mark.parametrize("script", SCRIPTS)
def test_a_failed_check_deploys_nothing(script: str, env: dict[str, str], message: str) -> None:
    completed = run_script(script, "--dry-run", "--project=p", env=env)
    assert completed.returncode == 1
    assert message in completed.stderr
    assert "gcloud" not in completed.stdout  # no command was run (or printed)


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_deploy_says_the_build_installs_the_hash_locked_requirements(script: str) -> None:
    completed = run_script(script, "--dry-run", "--project=demo-project")
    assert completed.returncode == 0, completed.stderr
    assert "requirements.txt" in uploaded_files()  # with main.py and relay/, from the same folder: --source=.
    locked, _ = pins((ROOT / "requirements.txt").read_text())
    assert (
        "Dependencies: requirements.txt, locked from requirements.in by ./dev lock: "
        f"{len(locked)} packages, each pinned with the sha256 of its files" in completed.stderr
    )


def unlock(root: Path) -> None:
    """requirements.txt as it was before it was a lock: the direct pins alone."""
    (root / "requirements.txt").write_text((root / "requirements.in").read_text())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(unlock, "requirements without --hash (functions-framework==", id="unlocked"),
        pytest.param(strip_hashes, "requirements without --hash (flask==", id="one-package-unhashed"),
        pytest.param(edit_source, "locked from another requirements.in than the one here", id="stale-lock"),
    ],
)
@pytest.mark.parametrize("script", SCRIPTS)
def test_a_requirements_txt_that_is_not_the_lock_of_requirements_in_deploys_nothing(
    tmp_path: Path, script: str, edit: Callable[[Path], None], message: str
) -> None:
    copy = repo_copy(tmp_path)
    edit(copy)
    completed = subprocess.run(
        ["bash", str(copy / "deploy" / script), "--dry-run", "--project=p"],
        env=base_environ(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert message in completed.stderr
    assert "run ./dev lock, then ./dev test" in completed.stderr
    assert "gcloud" not in completed.stdout


# -- A: the build service account (issue 15) ----------------------------------------------------

# The roles setup.sh grants the build service account, as Google documents them: Cloud Run Builder
# for `gcloud run deploy --source`, and for `gcloud functions deploy` the roles its custom build
# service account page lists (docs/deploy.md cites both).
BUILD_ROLES = {
    "roles/run.builder",
    "roles/logging.logWriter",
    "roles/artifactregistry.writer",
    "roles/storage.objectViewer",
}


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize(
    ("args", "resource"),
    [
        pytest.param(
            [],
            "projects/demo-project/serviceAccounts/relay-build@demo-project.iam.gserviceaccount.com",
            id="default",
        ),
        pytest.param(
            ["--build-service-account=builder"],
            "projects/demo-project/serviceAccounts/builder@demo-project.iam.gserviceaccount.com",
            id="a-name",
        ),
        pytest.param(
            ["--build-service-account", "ci@tools-project.iam.gserviceaccount.com"],
            "projects/tools-project/serviceAccounts/ci@tools-project.iam.gserviceaccount.com",
            id="another-projects-account",
        ),
    ],
)
def test_source_deploys_build_as_the_build_service_account(
    script: str, args: list[str], resource: str
) -> None:
    deploy = dry_run(script, *args)[0]
    # The form both `gcloud run deploy --source` and `gcloud functions deploy` take.
    assert flags(deploy)["--build-service-account"] == resource


def test_setup_creates_the_build_service_account_with_the_documented_roles() -> None:
    completed = run_script("setup.sh", "--dry-run", "--project=demo-project")
    assert completed.returncode == 0, completed.stderr
    printed = commands(completed.stdout)
    assert [
        "gcloud",
        "iam",
        "service-accounts",
        "create",
        "relay-build",
        "--project=demo-project",
        "--display-name=OpenAI stream relay builds",
    ] in printed
    granted = {
        flags(command)["--role"]
        for command in printed
        if command[1:4] == ["projects", "add-iam-policy-binding", "demo-project"]
        and flags(command)["--member"] == "serviceAccount:relay-build@demo-project.iam.gserviceaccount.com"
    }
    assert granted == BUILD_ROLES


def enabled_apis(printed: list[list[str]]) -> set[str]:
    return {word for command in printed if command[1:3] == ["services", "enable"] for word in command[3:]}


# Which APIs each gcloud command group of the scripts calls. A group missing here fails the test below.
APIS_OF_GROUP = {
    "config": set(),  # local
    "services": set(),  # Service Usage, on in every project
    "iam": {"iam.googleapis.com"},
    "projects": {"cloudresourcemanager.googleapis.com"},
    "secrets": {"secretmanager.googleapis.com"},
    "redis": {"redis.googleapis.com"},
    "storage": {"storage.googleapis.com"},
    "run": {"run.googleapis.com"},
    "functions": {"cloudfunctions.googleapis.com", "run.googleapis.com"},
}
# What a deploy from source uses besides: the build, its images, the uploaded source, the logs.
SOURCE_DEPLOY_APIS = {
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "storage.googleapis.com",
    "logging.googleapis.com",
}


def test_setup_enables_every_api_the_scripts_use(fake_gcloud: tuple[dict[str, str], Path]) -> None:
    env, state = fake_gcloud
    (state / "secret-relay-x-key").write_text("sk-x")  # an EXTRA_SECRETS secret, made beforehand
    setup = run_script(
        "setup.sh",
        "--project=demo-project",
        "--redis",
        "--build-account=ci@demo-project.iam.gserviceaccount.com",
        env={**env, "EXTRA_SECRETS": "X_API_KEY=relay-x-key"},
        stdin="sk-KEY\ntok-0123456789abcdef\n",
    )
    assert setup.returncode == 0, setup.stderr
    enabled = enabled_apis([["gcloud", *call.split()] for call in gcloud_calls(state)])
    for script in SCRIPTS:
        deploy = run_script(script, "--project=demo-project", "--redis", env=env)
        assert deploy.returncode == 0, deploy.stderr
    needed = set()
    for call in gcloud_calls(state):
        needed |= APIS_OF_GROUP[call.split()[0]]
        if "--source=" in call:
            needed |= SOURCE_DEPLOY_APIS
        if "--network=" in call:
            needed |= {"compute.googleapis.com"}  # the VPC network, for Direct VPC egress
    assert needed - enabled == set()
    assert "iam.googleapis.com" in enabled


def test_setup_lets_the_cloud_build_account_deploy_as_the_build_and_runtime_accounts() -> None:
    completed = run_script(
        "setup.sh", "--dry-run", "--project=demo-project", "--build-account=ci@ci-project.example"
    )
    assert completed.returncode == 0, completed.stderr
    printed = commands(completed.stdout)
    for account in ("relay-runtime", "relay-build"):
        assert [
            "gcloud",
            "iam",
            "service-accounts",
            "add-iam-policy-binding",
            f"{account}@demo-project.iam.gserviceaccount.com",
            "--project=demo-project",
            "--member=serviceAccount:ci@ci-project.example",
            "--role=roles/iam.serviceAccountUser",
            "--quiet",
        ] in printed


def test_setup_retries_a_grant_iam_does_not_accept_yet(fake_gcloud: tuple[dict[str, str], Path]) -> None:
    env, state = fake_gcloud
    completed = run_script(
        "setup.sh",
        "--project=demo-project",
        env={**env, "FAKE_GCLOUD_FAIL_BINDINGS": "2", "GRANT_RETRY_SECONDS": "0"},
        stdin="sk-KEY\n\n",
    )
    assert completed.returncode == 0, completed.stderr
    assert "grant failed, attempt 2" in completed.stderr
    first_grant = next(call for call in gcloud_calls(state) if "add-iam-policy-binding" in call)
    assert gcloud_calls(state).count(first_grant) == 3  # two failures, then the grant


# -- B: which project (issue 15) ----------------------------------------------------------------


@pytest.mark.parametrize("script", ["setup.sh", *SCRIPTS])
@pytest.mark.parametrize(
    ("given", "args", "project", "source"),
    [
        pytest.param(
            {"GOOGLE_CLOUD_PROJECT": "shell-p"}, [], "shell-p", "GOOGLE_CLOUD_PROJECT", id="cloud-shell"
        ),
        pytest.param(
            {"GOOGLE_CLOUD_PROJECT": "shell-p", "FAKE_GCLOUD_CONFIG_PROJECT": "config-p"},
            [],
            "shell-p",
            "GOOGLE_CLOUD_PROJECT",
            id="over-gcloud-config",
        ),
        pytest.param(
            {"FAKE_GCLOUD_CONFIG_PROJECT": "config-p"}, [], "config-p", "gcloud config", id="config-last"
        ),
        pytest.param(
            {"GOOGLE_CLOUD_PROJECT": "shell-p", "CLOUDSDK_CORE_PROJECT": "sdk-p"},
            [],
            "sdk-p",
            "CLOUDSDK_CORE_PROJECT",
            id="gcloud-override-first",
        ),
        pytest.param(
            {"GOOGLE_CLOUD_PROJECT": "shell-p", "CLOUDSDK_CORE_PROJECT": "sdk-p", "PROJECT": "p"},
            [],
            "p",
            "PROJECT",
            id="PROJECT-over-both",
        ),
        pytest.param(
            {"GOOGLE_CLOUD_PROJECT": "shell-p", "CLOUDSDK_CORE_PROJECT": "sdk-p", "PROJECT": "p"},
            ["--project=flag-p"],
            "flag-p",
            "--project",
            id="flag-first",
        ),
    ],
)
def test_project_order(
    fake_gcloud: tuple[dict[str, str], Path],
    script: str,
    given: dict[str, str],
    args: list[str],
    project: str,
    source: str,
) -> None:
    env, state = fake_gcloud
    completed = run_script(script, "--dry-run", *args, env={**env, **given})
    assert completed.returncode == 0, completed.stderr
    assert f"Project: {project} (from {source})." in completed.stderr
    projects = {
        word for command in commands(completed.stdout) for word in command if word.startswith("--project=")
    }
    assert projects == {f"--project={project}"}
    if script != "setup.sh":
        assert env_vars(commands(completed.stdout)[0])["GOOGLE_CLOUD_PROJECT"] == project
    # gcloud's stored configuration is asked only when nothing else names a project.
    assert any(call.startswith("config get-value project") for call in gcloud_calls(state)) == (
        source == "gcloud config"
    )


# -- C: what a deploy sets, where from, and the relay's own check (issue 15) --------------------


def test_deploy_reports_each_setting_and_its_origin_before_any_gcloud_step(
    tmp_path: Path, fake_gcloud: tuple[dict[str, str], Path]
) -> None:
    env, state = fake_gcloud
    seed_secrets(state)
    copy = repo_copy(tmp_path)
    (copy / "deploy" / "relay.env").write_text(
        "ALLOWED_MODELS=gpt-4o-mini\nMAX_TOKENS_LIMIT=4096\nSTREAM_USAGE=true\n"
    )
    completed = subprocess.run(
        ["bash", str(copy / "deploy" / "run.sh"), "--project=demo-project", "--allowed-models=gpt-4.1-mini"],
        env={
            **base_environ(),
            **env,
            "MAX_TOKENS_LIMIT": "100",
            "ALLOWED_ORIGINS": "https://chat.example.com",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stderr.splitlines()
    report = lines.index(
        "Relay settings this deploy sets (besides deploy/server.env and GOOGLE_CLOUD_PROJECT):"
    )
    for line in (
        "  ALLOWED_ORIGINS=https://chat.example.com  (from this shell)",
        "  ALLOWED_MODELS=gpt-4.1-mini  (from --allowed-models, over deploy/relay.env's)",
        "  MAX_TOKENS_LIMIT=100  (from this shell, over deploy/relay.env's)",
        "  STREAM_USAGE=true  (from deploy/relay.env)",
        "From Secret Manager: OPENAI_API_KEY, ACCESS_TOKENS.",
    ):
        assert report < lines.index(line) < 8 + report, line
    checked = next(i for i, line in enumerate(lines) if line.startswith("Configuration ok: "))
    first_gcloud = next(i for i, line in enumerate(lines) if line.startswith("fake-gcloud: "))
    assert report < checked < first_gcloud
    # Read-only lookups of the secrets' versions first, then the deploy: the first call that changes anything.
    assert gcloud_calls(state)[:2] == [
        secret_lookup("relay-openai-api-key"),
        secret_lookup("relay-access-tokens"),
    ]
    assert changes(state)[0].startswith("run deploy openai-stream-relay ")


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize(
    ("settings", "refused"),
    [
        pytest.param(
            {"ALLOWED_ORIGINS": "https://chat.example.com/"}, "ALLOWED_ORIGINS", id="origin-with-a-path"
        ),
        pytest.param({"MAX_TOKENS_LIMIT": "0"}, "MAX_TOKENS_LIMIT", id="zero-limit"),
        pytest.param({"OPENAI_BASE_URL": "api.openai.com/v1"}, "OPENAI_BASE_URL", id="url-without-scheme"),
        pytest.param({"ALLOW_CLIENT_KEYS": "nope"}, "ALLOW_CLIENT_KEYS", id="not-a-boolean"),
        pytest.param({"ALLOWED_MODELS": "gpt-4o-mini,,o3"}, "ALLOWED_MODELS", id="empty-item"),
    ],
)
def test_a_value_the_relay_would_refuse_is_refused_before_deploying(
    script: str, settings: dict[str, str], refused: str, fake_gcloud: tuple[dict[str, str], Path]
) -> None:
    env, state = fake_gcloud
    for args in (["--dry-run"], []):
        completed = run_script(script, "--project=demo-project", *args, env={**env, **settings})
        assert completed.returncode == 1
        assert f"Configuration error: {refused}" in completed.stderr
        assert (
            "the relay would refuse these settings at start-up (above); nothing was deployed"
            in completed.stderr
        )
        assert "gcloud" not in completed.stdout
    assert gcloud_calls(state) == []  # not one gcloud command ran


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize(
    ("name", "meant"), [("MAX_TOKEN_LIMIT", "MAX_TOKENS_LIMIT"), ("ACESS_TOKENS", "ACCESS_TOKENS")]
)
def test_a_misspelt_setting_in_the_shell_is_refused_before_deploying(
    script: str, name: str, meant: str, fake_gcloud: tuple[dict[str, str], Path]
) -> None:
    env, state = fake_gcloud
    completed = run_script(script, "--project=demo-project", env={**env, name: "100", "OPENAI_LOG": "debug"})
    assert completed.returncode == 1
    assert (
        f"Configuration error: {name} (exported in the shell that deploys) is not a setting of this relay: "
        f"did you mean {meant}?"
    ) in completed.stderr
    assert "OPENAI_LOG" not in completed.stderr  # another program's: not refused
    assert gcloud_calls(state) == []


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_check_sees_only_what_the_deployment_gets(script: str) -> None:
    # A route's key exported in the shell is not deployed: the relay would stop at start-up.
    upstreams = '[{"prefix": "x/", "base_url": "https://x.example/v1", "key_env": "X_API_KEY"}]'
    shell = {"UPSTREAMS": upstreams, "X_API_KEY": "sk-route-key-in-the-shell"}
    completed = run_script(script, "--dry-run", "--project=demo-project", env=shell)
    assert completed.returncode == 1
    assert "Configuration error: UPSTREAMS[0].key_env names X_API_KEY" in completed.stderr
    # Named in EXTRA_SECRETS, it comes from Secret Manager: a placeholder stands for it in the check.
    completed = run_script(
        script, "--dry-run", "--project=demo-project", env={**shell, "EXTRA_SECRETS": "X_API_KEY=relay-x-key"}
    )
    assert completed.returncode == 0, completed.stderr
    assert "sk-route-key-in-the-shell" not in completed.stdout + completed.stderr
    # THREADS is deploy/server.env's, whatever the shell says: the check must see server.env's.
    threads = int(shipped_server_env()["THREADS"])
    completed = run_script(
        script,
        "--dry-run",
        "--project=demo-project",
        env={"THREADS": "1", "UPSTREAM_MAX_CONNECTIONS": str(threads - 1)},
    )
    assert completed.returncode == 1
    assert "Configuration error: UPSTREAM_MAX_CONNECTIONS" in completed.stderr


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OPENAI_BASE_URL", "http://localhost:11434/v1"),
        ("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"),
        ("ALLOWED_ORIGINS", "https://chat.example.com,http://localhost:5173"),
    ],
)
def test_this_machine_named_in_the_shell_is_warned_not_refused(
    script: str, name: str, value: str, tmp_path: Path
) -> None:
    completed = run_script(script, "--dry-run", "--project=demo-project", env={name: value})
    assert completed.returncode == 0, completed.stderr
    assert f"warning: {name} comes from this shell and names this machine" in completed.stderr
    assert env_vars(commands(completed.stdout)[0])[name] == value
    # The same, committed in deploy/relay.env, is the owner's choice: no warning.
    copy = repo_copy(tmp_path)
    (copy / "deploy" / "relay.env").write_text(f"{name}={value}\n")
    committed = subprocess.run(
        ["bash", str(copy / "deploy" / script), "--dry-run", "--project=demo-project"],
        env=base_environ(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert committed.returncode == 0, committed.stderr
    assert "names this machine" not in committed.stderr


def variables_the_relay_reads() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "relay" / "config").glob("*.py"):
        names |= set(re.findall(r'environ,\s*"([A-Z][A-Z0-9_]*)"', path.read_text()))
    return names


# Set by the platform itself on every revision (Cloud Run's K_SERVICE), never by a deploy.
SET_BY_THE_PLATFORM = {"K_SERVICE"}
# Secrets a deployment that wants them names in EXTRA_SECRETS, as it does a route's key (the
# tests below deploy each).
FROM_EXTRA_SECRETS = {"ANTHROPIC_API_KEY"}


def test_every_variable_the_relay_reads_can_be_deployed() -> None:
    reads = variables_the_relay_reads()
    assert {
        "OPENAI_BASE_URL",
        "ACCESS_TOKENS",
        "THREADS",
        "GOOGLE_CLOUD_PROJECT",
    } <= reads  # the search works
    settings = set(from_common_sh('"${RELAY_SETTINGS[@]}"'))
    deploy = dry_run("run.sh")[0]
    platform = set(env_vars(deploy))  # deploy/server.env and GOOGLE_CLOUD_PROJECT
    assert (
        reads - settings - set(secrets(deploy)) - platform - SET_BY_THE_PLATFORM - FROM_EXTRA_SECRETS == set()
    )
    # And the other way: nothing passed on that the relay would ignore.
    assert settings - reads == set()


# -- D: safe by default for a public URL (issue 15) ---------------------------------------------

LIMITS = {
    "ALLOWED_MODELS": "--allowed-models",
    "MAX_TOKENS_LIMIT": "--max-tokens-limit",
    "ALLOWED_ORIGINS": "--allowed-origins",
}


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_public_deploy_suggests_limits_and_a_flag_sets_each(script: str) -> None:
    completed = run_script(script, "--dry-run", "--project=demo-project")
    suggestions = [line for line in completed.stderr.splitlines() if line.startswith("suggestion: ")]
    assert len(suggestions) == len(LIMITS)
    for (name, flag), suggestion in zip(LIMITS.items(), suggestions, strict=True):
        assert name in suggestion and flag in suggestion
    values = {
        "ALLOWED_MODELS": "gpt-4o-mini",
        "MAX_TOKENS_LIMIT": "4096",
        "ALLOWED_ORIGINS": "https://chat.example.com",
    }
    given = [f"{flag}={values[name]}" for name, flag in LIMITS.items()]
    # A flag wins over the shell, for this deploy.
    completed = run_script(
        script, "--dry-run", "--project=demo-project", *given, env={"ALLOWED_MODELS": "o3"}
    )
    assert completed.returncode == 0, completed.stderr
    assert "suggestion: " not in completed.stderr
    deployed = env_vars(commands(completed.stdout)[0])
    assert {name: deployed[name] for name in LIMITS} == values
    for name, flag in LIMITS.items():
        assert f"  {name}={values[name]}  (from {flag})" in completed.stderr
    # A private URL needs no such advice.
    assert "suggestion: " not in run_script(script, "--dry-run", "--project=demo-project", "--private").stderr


@pytest.mark.parametrize(
    ("tokens", "position", "length"),
    [
        pytest.param("tok-0123456789abcdef,tok-short", 2, 9, id="one-short"),
        pytest.param("tok-0123456789abcdef,", 2, 0, id="empty-item"),
        pytest.param("123456789012345", 1, 15, id="one-under"),
    ],
)
def test_setup_refuses_a_short_access_token_before_any_step(
    fake_gcloud: tuple[dict[str, str], Path], tokens: str, position: int, length: int
) -> None:
    env, state = fake_gcloud
    completed = run_script("setup.sh", "--project=demo-project", env=env, stdin=f"sk-KEY\n{tokens}\n")
    assert completed.returncode == 1
    assert (
        f"access token {position} is {length} characters long; each must be at least 16" in completed.stderr
    )
    assert gcloud_calls(state) == []
    for token in tokens.split(","):
        assert not token or token not in completed.stdout + completed.stderr
    # 16 is enough.
    assert (
        run_script(
            "setup.sh", "--project=demo-project", env=env, stdin="sk-KEY\n1234567890123456\n"
        ).returncode
        == 0
    )


# -- E: the products' names (issue 15) ----------------------------------------------------------


def test_products_are_named_as_google_names_them_now() -> None:
    assert "Cloud Run function" in run_script("function.sh", "--help").stdout
    texts = {script: run_script(script, "--help").stdout for script in ("setup.sh", *SCRIPTS)}
    texts["cloudbuild.yaml"] = (ROOT / "cloudbuild.yaml").read_text()
    docs = (ROOT / "docs" / "deploy.md").read_text()
    texts["docs/deploy.md"] = docs
    assert "Cloud Run functions" in docs
    assert docs.count("Cloud Functions (2nd gen)") == 1  # the old name, once, for searchers
    for where, text in texts.items():
        # "Cloud Functions" only as that mention of the old name.
        assert re.findall(r"Cloud Functions(?! \(2nd gen\))", text) == [], where
        assert text.count("Cloud Functions (2nd gen)") <= 1, where


def test_every_option_is_in_the_usage_text() -> None:
    common = (DEPLOY / "common.sh").read_text()
    parse = common[common.index("parse_flags() {") : common.index("require_gcloud() {")]
    shared = set(re.findall(r"^\s+(--[a-z][a-z-]*(?: \| --[a-z][a-z-]*)*)\)", parse, re.MULTILINE))
    shared = {flag for group in shared for flag in group.split(" | ")}
    deploy_only = set(re.findall(r"(--[a-z][a-z-]*)\) DEPLOY_FLAGS_GIVEN", parse))
    deploy_only |= {"--allowed-models", "--max-tokens-limit", "--allowed-origins"}
    assert {"--project", "--redis-instance", "--build-service-account", "--network"} <= shared
    for script in SCRIPTS:
        usage = run_script(script, "--help").stdout
        assert {flag for flag in shared if flag not in usage} == set(), script
    usage = run_script("setup.sh", "--help").stdout
    for_setup = (shared - deploy_only) | {"--region", "--network", "--build-account"}
    assert {flag for flag in for_setup if flag not in usage} == set()


# The variable of deploy/common.sh that holds each option's default, as --help states it.
DEFAULT_OF_OPTION = {
    "--region": "REGION",
    "--name": "SERVICE",
    "--key-secret": "KEY_SECRET",
    "--tokens-secret": "TOKENS_SECRET",
    "--runtime-account": "RUNTIME_ACCOUNT",
    "--build-service-account": "BUILD_SERVICE_ACCOUNT",
    "--memory": "MEMORY",
    "--max-instances": "MAX_INSTANCES",
    "--network": "DEFAULT_REDIS_NETWORK",  # setup.sh --redis only
}


def stated_defaults(usage: str) -> dict[str, str]:
    """Each option's default as a --help text states it: "--memory SIZE  default: $MEMORY or 2Gi"."""
    stated = {}
    for line in usage.splitlines():
        # One option a clause: "--memory SIZE  default: ...;  --max-instances N  default: 10".
        for clause in line.split(";"):
            # (--project's default is a list of variables, not a value: not matched.)
            match = re.match(r"\s*(--[a-z-]+)\b.*?\bdefault: (?:\$[A-Z_]+ or )?([^\s;,)$][^\s;,)]*)", clause)
            if match:
                stated[match.group(1)] = match.group(2)
    return stated


@pytest.mark.parametrize("script", ["setup.sh", *SCRIPTS])
def test_every_default_in_the_help_is_the_one_deployed(script: str) -> None:
    stated = stated_defaults(run_script(script, "--help").stdout)
    # Every stated default is one this test knows where to find (a new one must be added above).
    assert set(stated) <= set(DEFAULT_OF_OPTION), set(stated) - set(DEFAULT_OF_OPTION)
    assert {"--region", "--key-secret", "--runtime-account"} <= set(stated)  # the parse works
    actual = dict(
        zip(
            DEFAULT_OF_OPTION,
            from_common_sh(" ".join(f'"${name}"' for name in DEFAULT_OF_OPTION.values())),
            strict=True,
        )
    )
    assert {flag: value for flag, value in stated.items()} == {flag: actual[flag] for flag in stated}
    if script == "setup.sh":
        return
    assert {"--memory", "--max-instances", "--name", "--build-service-account"} <= set(stated)
    # And what the deploy command carries, left to its defaults.
    deploy = dry_run(script)[0]
    options = flags(deploy)
    assert options["--memory"] == stated["--memory"]
    assert options["--max-instances"] == stated["--max-instances"]
    assert options["--region"] == stated["--region"]
    assert deploy[3] == stated["--name"]
    assert options["--service-account"].startswith(stated["--runtime-account"] + "@")
    assert options["--build-service-account"].endswith(
        f"/{stated['--build-service-account']}@demo-project.iam.gserviceaccount.com"
    )
    mounted = {name: value.rpartition(":")[0] for name, value in secrets(deploy).items()}
    assert mounted == {"OPENAI_API_KEY": stated["--key-secret"], "ACCESS_TOKENS": stated["--tokens-secret"]}


# -- F: Redis for per-caller rate limits (issue 16) ---------------------------------------------

EGRESS = {"run.sh": "--vpc-egress", "function.sh": "--direct-vpc-egress"}


def seed_redis_instance(state: Path, name: str, network: str) -> None:
    """An instance the stand-in gcloud describes as Memorystore would: host, port, network."""
    (state / f"redis-{name}").write_text(f"10.20.30.40\t6379\t{network}\n")


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize(
    ("args", "instance", "network", "vpc"),
    [
        pytest.param(
            ["--redis"],
            "relay-limits",
            "projects/demo-project/global/networks/default",
            {"--network": "default", "--subnet": "default"},
            id="default-network",
        ),
        pytest.param(
            ["--redis-instance=limits-eu", "--subnet=relay-subnet"],
            "limits-eu",
            "projects/demo-project/global/networks/relay-vpc",
            {"--network": "relay-vpc", "--subnet": "relay-subnet"},
            id="own-network-and-subnet",
        ),
        pytest.param(
            ["--redis-instance", "shared"],
            "shared",
            "projects/host-project/global/networks/shared-vpc",
            {"--network": "projects/host-project/global/networks/shared-vpc", "--subnet": "shared-vpc"},
            id="another-projects-network",
        ),
    ],
)
def test_a_memorystore_instance_gives_redis_url_and_direct_vpc_egress(
    fake_gcloud: tuple[dict[str, str], Path],
    script: str,
    args: list[str],
    instance: str,
    network: str,
    vpc: dict[str, str],
) -> None:
    env, state = fake_gcloud
    seed_redis_instance(state, instance, network)
    completed = run_script(script, "--dry-run", "--project=demo-project", *args, env=env)
    assert completed.returncode == 0, completed.stderr
    lookup = f"redis instances describe {instance} --project=demo-project --region=us-central1"
    redis_calls = [call for call in gcloud_calls(state) if call.startswith("redis ")]
    assert redis_calls == [f"{lookup} --format=value(host,port,authorizedNetwork)"]
    deploy = commands(completed.stdout)[0]
    assert env_vars(deploy)["REDIS_URL"] == "redis://10.20.30.40:6379"
    assert f"  REDIS_URL=redis://10.20.30.40:6379  (from --redis-instance {instance})" in completed.stderr
    options = flags(deploy)
    assert {name: options[name] for name in ("--network", "--subnet")} == vpc
    assert options[EGRESS[script]] == "private-ranges-only"  # only private addresses go through the VPC
    assert not {"--vpc-connector", "--egress-settings"} & set(options)


@pytest.mark.parametrize("script", SCRIPTS)
def test_redis_url_given_directly_needs_no_lookup(
    script: str, fake_gcloud: tuple[dict[str, str], Path]
) -> None:
    env, state = fake_gcloud
    shell = {**env, "REDIS_URL": "rediss://redis.example.com:6380"}
    completed = run_script(script, "--dry-run", "--project=demo-project", env=shell)
    assert completed.returncode == 0, completed.stderr
    deploy = commands(completed.stdout)[0]
    assert env_vars(deploy)["REDIS_URL"] == "rediss://redis.example.com:6380"
    assert not {"--network", "--subnet", EGRESS[script]} & set(flags(deploy))
    assert "warning: REDIS_URL" not in completed.stderr
    # A Redis on a private address of a VPC network: Direct VPC egress through the network given.
    completed = run_script(
        script, "--dry-run", "--project=demo-project", env={**env, "REDIS_URL": "redis://10.0.0.5:6379"}
    )
    assert "warning: REDIS_URL is a private address" in completed.stderr
    completed = run_script(
        script,
        "--dry-run",
        "--project=demo-project",
        "--network=relay-vpc",
        env={**env, "REDIS_URL": "redis://10.0.0.5:6379"},
    )
    assert completed.returncode == 0, completed.stderr
    assert "warning: REDIS_URL" not in completed.stderr
    options = flags(commands(completed.stdout)[0])
    assert (options["--network"], options["--subnet"], options[EGRESS[script]]) == (
        "relay-vpc",
        "relay-vpc",
        "private-ranges-only",
    )
    assert [
        call for call in gcloud_calls(state) if call.startswith("redis ")
    ] == []  # no Memorystore lookup either way


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_redis_password_is_not_shown_and_belongs_in_secret_manager(script: str) -> None:
    url = "redis://:pw-0123456789@redis.example.com:6379"
    completed = run_script(script, "--dry-run", "--project=demo-project", env={"REDIS_URL": url})
    assert completed.returncode == 0, completed.stderr
    assert "pw-0123456789" not in completed.stderr
    assert "  REDIS_URL=redis://***@redis.example.com:6379  (from this shell)" in completed.stderr
    assert "warning: REDIS_URL carries a user or password" in completed.stderr
    # From Secret Manager instead: not a plain variable, and the check passes with a placeholder.
    completed = run_script(
        script, "--dry-run", "--project=demo-project", env={"EXTRA_SECRETS": "REDIS_URL=relay-redis-url"}
    )
    assert completed.returncode == 0, completed.stderr
    deploy = commands(completed.stdout)[0]
    assert secrets(deploy)["REDIS_URL"] == "relay-redis-url:latest"
    assert "REDIS_URL" not in env_vars(deploy)
    # Both at once is refused.
    completed = run_script(
        script,
        "--dry-run",
        "--project=demo-project",
        env={"EXTRA_SECRETS": "REDIS_URL=relay-redis-url", "REDIS_URL": "redis://10.0.0.5:6379"},
    )
    assert completed.returncode == 1
    assert "REDIS_URL is set (from this shell) and also comes from Secret Manager" in completed.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_redis_url_and_a_memorystore_instance_together_or_a_missing_one_are_refused(
    script: str, fake_gcloud: tuple[dict[str, str], Path]
) -> None:
    env, _ = fake_gcloud
    both = run_script(
        script,
        "--dry-run",
        "--project=demo-project",
        "--redis",
        env={**env, "REDIS_URL": "redis://10.0.0.5:6379"},
    )
    assert both.returncode == 1
    assert (
        "REDIS_URL is set (from this shell) and --redis-instance names a Memorystore instance" in both.stderr
    )
    missing = run_script(script, "--dry-run", "--project=demo-project", "--redis", env=env)
    assert missing.returncode == 1
    assert "no Memorystore for Redis instance 'relay-limits' in us-central1 of demo-project" in missing.stderr
    assert "deploy/setup.sh --redis-instance relay-limits --region us-central1" in missing.stderr
    assert commands(missing.stdout) == []  # only the lookup's comment: nothing deployed
    # cloudbuild.yaml's default, an empty name, means no instance.
    empty = run_script(script, "--dry-run", "--project=demo-project", "--redis-instance=", env=env)
    assert empty.returncode == 0, empty.stderr
    assert "REDIS_URL" not in env_vars(commands(empty.stdout)[0])


def test_setup_redis_creates_a_small_basic_instance_once_and_the_deploy_finds_it(
    fake_gcloud: tuple[dict[str, str], Path],
) -> None:
    env, state = fake_gcloud
    for _ in range(2):  # safe to run twice
        completed = run_script(
            "setup.sh",
            "--project=demo-project",
            "--redis",
            "--region=europe-west1",
            env=env,
            stdin="sk-KEY\n\n",
        )
        assert completed.returncode == 0, completed.stderr
    calls = gcloud_calls(state)
    create = (
        "redis instances create relay-limits --project=demo-project --region=europe-west1 "
        "--network=default --tier=basic --size=1"
    )
    assert calls.count(create) == 1
    assert "services enable redis.googleapis.com compute.googleapis.com --project=demo-project" in calls
    # Direct VPC egress from a Cloud Run function wants the runtime account to hold Cloud Run Invoker.
    assert (
        "projects add-iam-policy-binding demo-project "
        "--member=serviceAccount:relay-runtime@demo-project.iam.gserviceaccount.com "
        "--role=roles/run.invoker --condition=None --quiet"
    ) in calls
    # Another network, when told.
    printed = run_script(
        "setup.sh", "--dry-run", "--project=demo-project", "--redis-instance=limits", "--network=relay-vpc"
    ).stdout
    assert (
        "gcloud redis instances create limits --project=demo-project --region=us-central1 "
        "--network=relay-vpc --tier=basic --size=1"
    ) in printed.splitlines()
    # The deploy finds the instance setup made.
    deploy = run_script(
        "run.sh", "--dry-run", "--project=demo-project", "--region=europe-west1", "--redis", env=env
    )
    assert deploy.returncode == 0, deploy.stderr
    assert env_vars(commands(deploy.stdout)[0])["REDIS_URL"] == "redis://10.20.30.40:6379"
    # Without --redis, setup still refuses --region (it would be ignored); --subnet always.
    assert run_script("setup.sh", "--dry-run", "--project=p", "--redis", "--subnet=x").returncode == 1


def test_setup_lets_the_cloud_build_account_look_up_the_instance() -> None:
    account = "ci@demo-project.iam.gserviceaccount.com"
    with_redis = run_script(
        "setup.sh", "--dry-run", "--project=demo-project", "--redis", f"--build-account={account}"
    )
    without = run_script("setup.sh", "--dry-run", "--project=demo-project", f"--build-account={account}")
    viewer = f"--member=serviceAccount:{account} --role=roles/redis.viewer"
    assert viewer in with_redis.stdout
    assert viewer not in without.stdout


# -- Cloud Build and the runbook ----------------------------------------------------------------


DEPLOYER = "relay-deployer@demo-project.iam.gserviceaccount.com"
# Every grant setup.sh --build-account makes, as (role, where), each from a Google page that asks
# for it (docs/deploy.md, "From Cloud Build", says why each; its table lists the same roles).
DEPLOYER_GRANTS = {
    ("roles/run.admin", "project demo-project"),
    ("roles/run.sourceDeveloper", "project demo-project"),
    ("roles/serviceusage.serviceUsageConsumer", "project demo-project"),
    ("roles/cloudfunctions.developer", "project demo-project"),
    ("roles/logging.logWriter", "project demo-project"),
    ("roles/iam.serviceAccountUser", "service account relay-runtime@demo-project.iam.gserviceaccount.com"),
    ("roles/iam.serviceAccountUser", "service account relay-build@demo-project.iam.gserviceaccount.com"),
    ("roles/secretmanager.viewer", "secret relay-openai-api-key"),
    ("roles/secretmanager.viewer", "secret relay-access-tokens"),
    ("roles/secretmanager.viewer", "secret relay-x-key"),
    ("roles/storage.objectViewer", "bucket gs://demo-project_cloudbuild"),
    ("roles/redis.viewer", "project demo-project"),  # with --redis only
}


def grants_to(member: str, calls: list[str]) -> set[tuple[str, str]]:
    """The (role, where) of every add-iam-policy-binding call for `member` (an email)."""
    where_of = {
        "projects": "project",
        "iam service-accounts": "service account",
        "secrets": "secret",
        "storage buckets": "bucket",
    }
    granted = set()
    for call in calls:
        words = shlex.split(call)
        if "add-iam-policy-binding" not in words or f"--member=serviceAccount:{member}" not in words:
            continue
        at = words.index("add-iam-policy-binding")
        granted.add((flags(words)["--role"], f"{where_of[' '.join(words[:at])]} {words[at + 1]}"))
    return granted


def test_setup_gives_the_cloud_build_account_exactly_the_documented_roles(
    fake_gcloud: tuple[dict[str, str], Path],
) -> None:
    env, state = fake_gcloud
    seed_secrets(state, **{"relay-x-key": "ENABLED"})
    (state / "versions-relay-openai-api-key").unlink()  # the key and the tokens: made by setup
    (state / "secret-relay-openai-api-key").unlink()
    (state / "versions-relay-access-tokens").unlink()
    (state / "secret-relay-access-tokens").unlink()
    completed = run_script(
        "setup.sh",
        "--project=demo-project",
        "--redis",
        "--build-account=relay-deployer",
        env={**env, "EXTRA_SECRETS": "X_API_KEY=relay-x-key"},
        stdin="sk-KEY\ntok-0123456789abcdef\n",
    )
    assert completed.returncode == 0, completed.stderr
    calls = gcloud_calls(state)
    # A name: this project's account, made by setup; the build names it with --service-account.
    assert "iam service-accounts create relay-deployer --project=demo-project" in " | ".join(calls)
    assert f"--service-account=projects/demo-project/serviceAccounts/{DEPLOYER}" in completed.stderr
    assert grants_to(DEPLOYER, calls) == DEPLOYER_GRANTS
    # The bucket `gcloud builds submit` uploads the source to: made once, private.
    create = "storage buckets create gs://demo-project_cloudbuild --project=demo-project"
    assert [call for call in calls if call.startswith(create)] == [
        f"{create} --uniform-bucket-level-access --public-access-prevention"
    ]
    # Nothing broad: no role that covers every bucket, image repository or build of the project.
    roles = {role for role, _ in grants_to(DEPLOYER, calls)}
    assert not roles & {
        "roles/storage.admin",
        "roles/artifactregistry.admin",
        "roles/cloudbuild.builds.editor",
    }
    assert "roles/secretmanager.secretAccessor" not in roles  # the build never reads a value
    # Without --redis, no Redis Viewer; an address of another project is not created.
    (state / "calls").unlink()
    completed = run_script(
        "setup.sh",
        "--project=demo-project",
        "--build-account=ci@tools.iam.gserviceaccount.com",
        env=env,
        stdin="\n\n",
    )
    assert completed.returncode == 0, completed.stderr
    calls = gcloud_calls(state)
    assert not any(call.startswith("iam service-accounts create ci ") for call in calls)
    assert ("roles/redis.viewer", "project demo-project") not in grants_to(
        "ci@tools.iam.gserviceaccount.com", calls
    )
    assert ("roles/run.admin", "project demo-project") in grants_to("ci@tools.iam.gserviceaccount.com", calls)


def test_the_runbook_lists_the_roles_setup_gives_the_cloud_build_account() -> None:
    docs = (ROOT / "docs" / "deploy.md").read_text()
    section = docs[docs.index("## From Cloud Build") : docs.index("### Update the build's images")]
    table = section[section.index("| role | on | for |") :].split("\n\n")[0]
    documented = set(re.findall(r"^\| `(roles/[A-Za-z.]+)`", table, re.MULTILINE))
    assert documented == {role for role, _ in DEPLOYER_GRANTS}
    setup = (DEPLOY / "setup.sh").read_text()
    declared = re.search(r"BUILD_ACCOUNT_ROLES=\(([^)]*)\)", setup)
    assert declared is not None
    assert set(declared.group(1).split()) <= documented
    # Which account runs the build, and the exact command for its address, in the order of a walk.
    steps = [
        "deploy/setup.sh --build-account relay-deployer",
        'gcloud iam service-accounts describe "relay-deployer@$PROJECT.iam.gserviceaccount.com"',
        "gcloud builds submit",
        '--service-account="projects/$PROJECT/serviceAccounts/$BUILD_ACCOUNT"',
        "gcloud run services describe openai-stream-relay",
    ]
    positions = [section.index(step) for step in steps]
    assert positions == sorted(positions)
    assert "gcloud builds triggers create github" in section
    for page in (
        "https://cloud.google.com/build/docs/securing-builds/configure-user-specified-service-accounts",
        "https://cloud.google.com/run/docs/configuring/services/build-service-account",
        "https://cloud.google.com/functions/docs/reference/iam/roles",
        "https://cloud.google.com/secret-manager/docs/view-secret-version",
    ):
        assert page in docs, page


# The oldest gcloud that takes every flag the deploy scripts pass: deploy/function.sh's Direct VPC
# egress (--network, --subnet, --direct-vpc-egress) came to `gcloud functions deploy` in 558.0.0.
OLDEST_GCLOUD = (558, 0, 0)


def test_cloudbuild_images_are_pinned_to_a_version() -> None:
    build = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    for step in build["steps"]:
        image = step["name"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{image}: no tag"
        assert tag != "latest" and not tag.startswith("latest"), image
        assert re.match(r"\d+\.\d+\.\d+", tag), f"{image}: not a version"
        assert "@" not in repository  # (a digest would do too, but says nothing a reader can check)
    test, deploy = build["steps"]
    assert re.fullmatch(r"python:3\.12\.\d+-trixie", test["name"])  # the deployed runtime: python312
    version = re.fullmatch(
        r"gcr\.io/google\.com/cloudsdktool/google-cloud-cli:(\d+)\.(\d+)\.(\d+)-slim", deploy["name"]
    )
    assert version, deploy["name"]  # -slim: it has python3, which the deploy's settings check runs
    assert tuple(int(part) for part in version.groups()) >= OLDEST_GCLOUD
    assert ":latest" not in (ROOT / "cloudbuild.yaml").read_text()
    docs = (ROOT / "docs" / "deploy.md").read_text()
    assert "### Update the build's images" in docs
    assert deploy["name"].rpartition("/")[2] in docs and test["name"] in docs


@pytest.mark.parametrize("target", ["function", "run"])
def test_cloudbuild_deploy_arguments_are_taken_by_the_script(target: str) -> None:
    build = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    values = {**build["substitutions"], "_TARGET": target}
    args = [
        re.sub(r"\$\{(_[A-Z_]+)\}", lambda match: str(values[match.group(1)]), arg).replace(
            "$PROJECT_ID", "demo-p"
        )
        for arg in build["steps"][1]["args"]
    ]
    assert args[0] == f"deploy/{target}.sh"
    completed = run_script(args[0].removeprefix("deploy/"), "--dry-run", *args[1:])
    assert completed.returncode == 0, completed.stderr
    deploy = commands(completed.stdout)[0]
    assert flags(deploy)["--project"] == "demo-p"
    assert "REDIS_URL" not in env_vars(deploy)


def test_the_runbook_runs_the_function_locally_on_loopback_only() -> None:
    docs = (ROOT / "docs" / "deploy.md").read_text()
    assert ".venv/bin/functions-framework --target chat --host 127.0.0.1 --port 8080" in docs
    for line in docs.splitlines():
        if "functions-framework --target" in line:
            assert ".venv/bin/functions-framework" in line and "--host 127.0.0.1" in line, line


def test_the_runbook_names_what_setup_grants_the_build_service_account() -> None:
    docs = (ROOT / "docs" / "deploy.md").read_text()
    assert {role for role in BUILD_ROLES if f"`{role}`" not in docs} == set()
    assert "https://cloud.google.com/run/docs/configuring/services/build-service-account" in docs


def test_the_runbook_rotates_a_secret_by_adding_a_version_and_deploying() -> None:
    docs = (ROOT / "docs" / "deploy.md").read_text()
    rotate = docs[docs.index("## Rotate a key or a token") : docs.index("## Roll back")]
    # The runbook's lookup is the deploy's own.
    lookup = secret_lookup("relay-openai-api-key", project='"$PROJECT"').replace(
        "value(name)", "'value(name)'"
    )
    assert f"gcloud {lookup}" in rotate
    for step in (
        "| deploy/setup.sh",
        "deploy/run.sh",
        "gcloud secrets versions disable N --secret=relay-openai-api-key",
    ):
        assert step in rotate, step
    assert "https://cloud.google.com/run/docs/configuring/secrets" in docs


# -- Anthropic's key, from Secret Manager as a route's key comes (docs/anthropic.md, "Deploy") ------


@pytest.mark.parametrize("script", SCRIPTS)
def test_anthropics_key_is_mounted_from_secret_manager_at_its_newest_version(
    script: str, fake_gcloud: tuple[dict[str, str], Path]
) -> None:
    env, state = fake_gcloud
    seed_secrets(state, **{"relay-anthropic-api-key": "ENABLED ENABLED"})
    shell = {
        **env,
        "EXTRA_SECRETS": "ANTHROPIC_API_KEY=relay-anthropic-api-key",
        "ANTHROPIC_API_KEY": "sk-ant-in-the-shell-789",
        "ANTHROPIC_BASE_URL": "https://gateway.example/anthropic",
    }
    completed = run_script(script, "--project=demo-project", env=shell)
    assert completed.returncode == 0, completed.stderr
    assert "sk-ant-in-the-shell-789" not in completed.stdout + completed.stderr + "".join(gcloud_calls(state))
    assert (
        "ANTHROPIC_API_KEY is set in this shell and is NOT deployed as a plain variable" in completed.stderr
    )
    deploy = ["gcloud", *shlex.split(next(call for call in gcloud_calls(state) if " deploy " in f" {call} "))]
    assert secrets(deploy)["ANTHROPIC_API_KEY"] == "relay-anthropic-api-key:2"
    assert "ANTHROPIC_API_KEY" not in env_vars(deploy)
    assert env_vars(deploy)["ANTHROPIC_BASE_URL"] == "https://gateway.example/anthropic"  # a plain setting


@pytest.mark.parametrize("script", SCRIPTS)
def test_anthropics_key_in_the_shell_alone_is_not_deployed_and_the_warning_says_how(script: str) -> None:
    completed = run_script(
        script, "--dry-run", "--project=demo-project", env={"ANTHROPIC_API_KEY": "sk-ant-in-the-shell-789"}
    )
    assert completed.returncode == 0, completed.stderr
    assert "sk-ant-in-the-shell-789" not in completed.stdout + completed.stderr
    assert (
        "ANTHROPIC_API_KEY is set in this shell and is NOT deployed as a plain variable; store it in Secret "
        "Manager and name it in EXTRA_SECRETS (ANTHROPIC_API_KEY=relay-anthropic-api-key)"
    ) in completed.stderr
    deploy = commands(completed.stdout)[0]
    assert "ANTHROPIC_API_KEY" not in env_vars(deploy) and "ANTHROPIC_API_KEY" not in secrets(deploy)


def test_setup_lets_the_runtime_read_anthropics_key(fake_gcloud: tuple[dict[str, str], Path]) -> None:
    env, state = fake_gcloud
    (state / "secret-relay-anthropic-api-key").write_text("sk-ant")  # made beforehand, as the runbook says
    completed = run_script(
        "setup.sh",
        "--project=demo-project",
        stdin="sk-openai-key\ntok-0123456789abcdef\n",
        env={**env, "EXTRA_SECRETS": "ANTHROPIC_API_KEY=relay-anthropic-api-key"},
    )
    assert completed.returncode == 0, completed.stderr
    assert any(
        call.startswith("secrets add-iam-policy-binding relay-anthropic-api-key")
        and "roles/secretmanager.secretAccessor" in call
        for call in gcloud_calls(state)
    ), gcloud_calls(state)
