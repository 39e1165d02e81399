"""The deploy scripts and cloudbuild.yaml, checked offline: the exact gcloud commands they would run."""

from __future__ import annotations

import math
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pathspec
import pytest
import yaml

from relay.config import load_settings
from tests.relay_server import ROOT, base_environ, shipped_server_env

DEPLOY = ROOT / "deploy"
SCRIPTS = ["function.sh", "run.sh"]


def run_script(
    name: str, *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(DEPLOY / name), *args],
        cwd=ROOT,
        env={**base_environ(), **(env or {})},
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
    assert options["--memory"] == "512Mi"
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
    deploy = shlex.split(completed.stdout.splitlines()[0])
    assert secrets(deploy) == {
        "OPENAI_API_KEY": "relay-openai-api-key:latest",
        "ACCESS_TOKENS": "relay-access-tokens:latest",
    }
    assert not {"OPENAI_API_KEY", "ACCESS_TOKENS"} & set(env_vars(deploy))


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


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize(
    ("args", "access", "warned"),
    [
        pytest.param([], "--allow-unauthenticated", False, id="tokens-public-url"),
        pytest.param(["--private"], "--no-allow-unauthenticated", False, id="tokens-and-iam"),
        pytest.param(["--no-access-tokens"], "--no-allow-unauthenticated", False, id="no-tokens-private"),
        pytest.param(
            ["--no-access-tokens", "--public"], "--allow-unauthenticated", True, id="no-tokens-public-asked"
        ),
    ],
)
def test_public_access_only_with_tokens_or_when_asked(
    script: str, args: list[str], access: str, warned: bool
) -> None:
    completed = run_script(script, "--dry-run", "--project=demo-project", *args)
    assert completed.returncode == 0
    deploy = shlex.split(completed.stdout.splitlines()[0])
    assert access in deploy
    assert ("--allow-unauthenticated" in deploy) != ("--no-allow-unauthenticated" in deploy)
    assert ("ANYONE WHO FINDS THE URL CAN SPEND YOUR OPENAI KEY" in completed.stderr) == warned
    assert ("ACCESS_TOKENS" in secrets(deploy)) == ("--no-access-tokens" not in args)


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
    ["--region=europe-west1", "--name=x", "--memory=1Gi", "--max-instances=3", "--public", "--private"],
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
# Records each call; "describe" succeeds for what an earlier call created.
state="$FAKE_GCLOUD_STATE"
printf '%s\\n' "$*" >>"$state/calls"
case "$1 $2" in
  "secrets describe") [ -e "$state/secret-$3" ] ;;
  "secrets create") cat >"$state/secret-$3"; printf '%s\\n' "$3" >>"$state/stored" ;;
  "secrets versions") cat >>"$state/secret-$4"; printf '%s\\n' "$4" >>"$state/stored" ;;
  "iam service-accounts")
    case "$3" in
      describe) [ -e "$state/account" ] ;;
      create) touch "$state/account" ;;
    esac ;;
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


def test_setup_is_safe_to_run_twice_and_keeps_secrets_off_the_command_line(
    fake_gcloud: tuple[dict[str, str], Path],
) -> None:
    env, state = fake_gcloud

    first = run_script(
        "setup.sh", "--project=demo-project", env=env, stdin="sk-SETUP-KEY-1\ntok-SETUP-A,tok-SETUP-B\n"
    )
    assert first.returncode == 0, first.stderr
    assert (state / "secret-relay-openai-api-key").read_text() == "sk-SETUP-KEY-1"
    assert (state / "secret-relay-access-tokens").read_text() == "tok-SETUP-A,tok-SETUP-B"
    calls = (state / "calls").read_text()
    assert "services enable" in calls
    assert "iam service-accounts create relay-runtime" in calls
    assert calls.count("roles/secretmanager.secretAccessor") == 2
    for secret in ("sk-SETUP-KEY-1", "tok-SETUP-A"):
        assert secret not in calls  # values go through standard input only
        assert secret not in first.stdout + first.stderr

    # Again, keeping both secrets (empty lines): nothing new is stored, nothing fails.
    second = run_script("setup.sh", "--project=demo-project", env=env, stdin="\n\n")
    assert second.returncode == 0, second.stderr
    assert (state / "stored").read_text().split() == ["relay-openai-api-key", "relay-access-tokens"]
    assert (state / "calls").read_text().count("iam service-accounts create") == 1

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
    assert test["args"] == ["-c", readme_test_command]
    assert deploy["name"] == "gcr.io/google.com/cloudsdktool/cloud-sdk"
    assert deploy["waitFor"] == [test["id"]]
    assert deploy["args"][0] == "deploy/${_TARGET}.sh"
    assert set(build["substitutions"]) == {"_TARGET", "_REGION", "_SERVICE", "_KEY_SECRET", "_TOKENS_SECRET"}
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
        "relay/handler.py",
        "relay/__init__.py",
        "relay/static/index.html",
    } <= uploaded
    assert all(path in ("main.py", "requirements.txt") or path.startswith("relay/") for path in uploaded), (
        uploaded
    )
    assert not any(path.endswith(".pyc") for path in uploaded)


@pytest.mark.parametrize("script", SCRIPTS)
def test_route_keys_come_from_secret_manager_too(script: str) -> None:
    upstreams = '[{"prefix": "openrouter/", "base_url": "https://openrouter.ai/api/v1", "key_env": "OPENROUTER_API_KEY"}]'
    deploy = dry_run(
        script, env={"UPSTREAMS": upstreams, "EXTRA_SECRETS": "OPENROUTER_API_KEY=relay-openrouter-key"}
    )[0]
    assert env_vars(deploy)["UPSTREAMS"] == upstreams
    assert secrets(deploy)["OPENROUTER_API_KEY"] == "relay-openrouter-key:latest"


def test_committed_relay_settings_are_deployed_and_the_shell_wins(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "deploy", copy / "deploy")
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
    deployed = env_vars(shlex.split(completed.stdout.splitlines()[0]))
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
