"""Running `agentnn` as a team member would, and checking what it printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import team_servers as ts

COMMAND_TIMEOUT = 600  # seconds: a guard against a hang or minutes of retries, not a benchmark
AGENTNN = str(Path(sys.executable).with_name("agentnn"))
RUN_ID_LINE = re.compile(r"run id:\s+([0-9a-f]{32})")


@dataclass
class Team:
    """A fresh working directory and a way to run `agentnn …` there as a separate process."""

    workdir: Path
    outputs: list[str] = field(default_factory=list)

    @property
    def journal_dir(self) -> Path:
        return self.workdir / "journal"

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AGENTNN_"))}
        env.update(AGENTNN_JOURNAL_DIR=str(self.journal_dir),
                   AGENTNN_CACHE_DIR=str(self.workdir / "model-cache"),
                   OMP_NUM_THREADS="1",
                   AGENTNN_OFFLINE="fail")  # a slow server must fail here, not go local
        return env

    def credentials(self, mode: str, url: str, user: str, password: str) -> dict[str, str]:
        """Environment for one way of giving credentials: "env", ".env" or "uri"."""
        if mode == "env":
            return {"MLFLOW_TRACKING_URI": url, "MLFLOW_TRACKING_USERNAME": user,
                    "MLFLOW_TRACKING_PASSWORD": password}
        if mode == ".env":
            (self.workdir / ".env").write_text(
                f"MLFLOW_TRACKING_URI={url}\nMLFLOW_TRACKING_USERNAME={user}\n"
                f"MLFLOW_TRACKING_PASSWORD={password}\n"
            )
            return {}
        if mode == "uri":
            return {"MLFLOW_TRACKING_URI": ts.with_credentials(url, user, password)}
        raise ValueError(mode)

    def run(self, *args: str, env: dict[str, str] | None = None,
            timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
        """`agentnn ARGS` in the working directory; its output must hold no secret."""
        result = subprocess.run(
            [AGENTNN, *args], cwd=self.workdir, env={**self.base_env(), **(env or {})},
            capture_output=True, text=True, timeout=timeout,
        )
        self.outputs.append(result.stdout + result.stderr)
        assert_no_secret(result.stdout + result.stderr, f"output of agentnn {' '.join(args)}")
        assert_no_secret(self.writer_logs(), f"writer's log in {self.journal_dir}")
        return result

    def python(self, code: str, *args: str, env: dict[str, str] | None = None
               ) -> subprocess.Popen:
        """Start ``python -c code args`` in the working directory (not waited for)."""
        return subprocess.Popen(
            [sys.executable, "-c", code, *args], cwd=self.workdir,
            env={**self.base_env(), **(env or {})}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )

    def writer_logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.journal_dir.rglob("*.log"))


def assert_no_secret(text: str, where: str) -> None:
    for secret in ts.SECRETS:
        assert secret not in text, f"a password appears in the {where}:\n{text[-3000:]}"


def run_id_of(result: subprocess.CompletedProcess) -> str:
    match = RUN_ID_LINE.search(result.stdout)
    assert match, result.stdout + result.stderr
    return match.group(1)


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one line a failing command prints on stderr (progress bars aside)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return errors[0]
