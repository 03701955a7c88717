"""What the libraries under a command may print: nothing by default, everything with ``-v``.

A new user's first commands used to scroll with MLflow's INFO lines ("Creating initial MLflow
database tables…"), its "Successfully registered model" notes and download bars, Optuna's
trial lines and the UI server's access log, none of which they asked for. The command's own
output (results on stdout, agentnn's progress and one-line errors on stderr) is what they came
for; ``agentnn -v`` brings the rest back when something needs explaining.

The switches are environment variables MLflow reads and logger levels, so they reach the
processes a command starts too (the writer, search workers, the UI server); a variable the user
set themselves is left alone.
"""

from __future__ import annotations

import logging
import os

from agentnn import config

QUIET_ENVIRONMENT = {
    config.MLFLOW_LOGGING_LEVEL: "WARNING",  # INFO: tables created, input example validated
    config.MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR: "false",  # tqdm "Downloading artifacts" bars
    # "🏃 View run … at: <url>" on stdout after each run on a server (and in writer.log)
    config.MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT: "true",
}
"""MLflow's switches, for this process and every process it starts."""

QUIET_LOGGERS = ("mlflow", "optuna", "alembic", "uvicorn", "uvicorn.access", "uvicorn.error",
                 "httpx", "urllib3")
"""Loggers whose INFO lines no command's user asked for; their warnings still show."""


_set_here: set[str] = set()  # variables apply() set, so a later verbose command can drop them


def apply(verbose: bool) -> None:
    """Quiet the libraries for this command (and its child processes), unless ``verbose``.

    Called once per command; a test runs many in one process, so each call undoes what an
    earlier one set that this one does not want.
    """
    if verbose:
        os.environ[config.AGENTNN_VERBOSE] = "1"
        for name in _set_here:
            os.environ.pop(name, None)
        _set_here.clear()
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
        logging.getLogger("mlflow").setLevel(logging.INFO)  # MLflow's own default
        return
    os.environ.pop(config.AGENTNN_VERBOSE, None)
    for name, value in QUIET_ENVIRONMENT.items():
        if name not in os.environ:
            os.environ[name] = value
            _set_here.add(name)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def is_verbose() -> bool:
    """Whether the command runs under ``-v`` (what :func:`apply` was given)."""
    return config.libraries_verbose()
