"""The function started as the platform starts it: a fresh environment with only requirements.txt,
only the files .gcloudignore uploads, and the environment the deploy scripts set."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.chat_client import chat
from tests.conftest import ACCESS_TOKEN, SERVER_KEY, assert_no_secret
from tests.fake_upstream import FakeUpstream, Reply, openai_stream
from tests.relay_server import ROOT, RelayServer
from tests.test_deploy import dry_run, env_vars, secrets, uploaded_files


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with requirements.txt and nothing else."""
    venv = tmp_path_factory.mktemp("runtime") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "-r",
            str(ROOT / "requirements.txt"),
        ],
        check=True,
        timeout=600,
    )
    return venv


@pytest.fixture(scope="module")
def uploaded_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of exactly the files a deploy uploads."""
    source = tmp_path_factory.mktemp("source")
    for path in uploaded_files():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, source / path)
    return source


def deployed_environment(script: str) -> dict[str, str]:
    """What the platform gives the function: --set-env-vars, and each secret as a variable."""
    deploy = dry_run(script)[0]
    env = env_vars(deploy)
    values = {"OPENAI_API_KEY": SERVER_KEY, "ACCESS_TOKENS": ACCESS_TOKEN}
    env.update({name: values[name] for name in secrets(deploy)})
    return env


@pytest.fixture(params=["function.sh", "run.sh"])
def production(
    request: pytest.FixtureRequest, fake: FakeUpstream, runtime_venv: Path, uploaded_source: Path
) -> Iterator[RelayServer]:
    env = deployed_environment(request.param)
    env["OPENAI_BASE_URL"] = fake.base_url  # the one difference: the fake plays OpenAI
    server = RelayServer(
        env,
        # The platform's start command (the buildpack's entrypoint), from the runtime venv.
        command=[str(runtime_venv / "bin" / "functions-framework"), "--target=chat"],
        cwd=uploaded_source,
    ).start()
    yield server
    server.stop()
    assert_no_secret(server.output(), "the production server's output")


def test_streamed_reply_from_the_production_start(
    fake: FakeUpstream, production: RelayServer, client: httpx.Client
) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["in", " production"], pace=0.05))
    reply = chat(client, production.url, headers={"Authorization": f"Bearer {ACCESS_TOKEN}"})
    assert reply.status == 200
    assert reply.body == b'{"model":"gpt-fake-0613"}in production'
    assert fake.requests[0].headers["authorization"] == f"Bearer {SERVER_KEY}"
    assert chat(client, production.url).status == 401  # the access tokens came through
    serving = [entry["message"] for entry in production.log_entries() if "serving with" in entry["message"]]
    assert serving and all("serving with GeventWorker" in line for line in serving)
