"""The Optuna side of the architecture search: storage, study, its one parent run, recovery.

Why a module of its own: the search's training code (``dynamic_architecture``) should read as
"sample, train, report"; what it takes to let several processes and machines share one study
lives here:

- the **storage** is an Optuna RDB storage (SQLite on one machine, PostgreSQL for several);
  a new SQLite file is created under a file lock, a server database's tables under an
  advisory lock of that database (two hosts opening a new storage at once would otherwise
  both create Optuna's tables, and one of them fail), and SQLite waits for its lock instead of
  failing when two processes write at once;
- the **parent run**: the process whose ``create_study`` succeeds (the storage refuses a
  second study of the same name, atomically) creates the MLflow parent run and stores its id
  as a study user attribute; every other process waits for that attribute and joins the run;
- **interrupted trials**: a trial left RUNNING by a process on this machine that no longer
  exists (or, on another machine, by one whose heartbeat stopped) is marked failed and its
  parameters queued again, so a study started again resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from agentnn.errors import InvalidArgumentError, TrainerConfigError
from agentnn.mlflow_integration.journal.process import pid_alive
from agentnn.nn_models.training.configs import JSONValue

if TYPE_CHECKING:
    import optuna
    from mlflow import MlflowClient

EngineKwargs: TypeAlias = dict[str, dict[str, int]]
"""Keyword arguments for SQLAlchemy's ``create_engine`` (only ``connect_args`` is set)."""

# --- names stored in the study and on the runs -------------------------------------------------
STUDY_TAG = "agentnn.study"  # on the parent run and every trial's child run
TRIAL_TAG = "agentnn.trial"  # the trial number, on the child run
TRIAL_STATE_TAG = "agentnn.trial_state"  # running, complete, pruned or failed
PARENT_RUN_ATTR = "agentnn.parent_run_id"  # study user attribute: the one parent run
RUN_ID_ATTR = "agentnn.run_id"  # trial user attribute: the trial's child run
HOST_ATTR = "agentnn.host"  # trial user attributes: who runs it, to spot a dead process
PID_ATTR = "agentnn.pid"
RETRY_OF_ATTR = "agentnn.retry_of"  # a queued trial that repeats an interrupted one
COMMAND_ATTR = "agentnn.command"  # trial user attribute: the command whose budget it used
ROW_ATTR = "agentnn.row"  # trial user attribute: its leaderboard row

# --- defaults ----------------------------------------------------------------------------------
DEFAULT_STORAGE_FILE = "optuna.db"  # beside the SQLite tracking store, or in ./mlruns
DEFAULT_STUDY_PREFIX = "architecture"  # + a hash of the search space and the data
SQLITE_BUSY_TIMEOUT_S = 60  # SQLite waits this long for another process's write lock
PARENT_WAIT_S = 120.0  # a joining process waits this long for the parent run id
SCHEMA_LOCK_KEY = 0x61676E6E  # the advisory lock ("agnn") a server database's tables are made
#                               under; any number others leave alone will do
SCHEMA_LOCK_WAIT_S = 120  # MySQL's GET_LOCK gives up after this (PostgreSQL waits as long as
#                           the holder, who only creates a handful of tables)
PARENT_POLL_S = 0.25
HEARTBEAT_INTERVAL_S = 20  # trials on other machines prove they are alive this often...
HEARTBEAT_GRACE_S = 120  # ...and count as interrupted after this long without a heartbeat


def default_storage(tracking_uri: str, journal_dir: str | os.PathLike[str]) -> str:
    """A SQLite file beside the tracking store: its folder for a SQLite store, else ./mlruns.

    Why beside it: the study and the runs it tracks then move, back up and clean up together.
    """
    if tracking_uri.startswith("sqlite:///"):
        folder = Path(tracking_uri[len("sqlite:///"):]).parent
    else:
        folder = Path(journal_dir).parent
    return f"sqlite:///{(folder / DEFAULT_STORAGE_FILE).resolve()}"


def default_study_name(config: Mapping[str, JSONValue],
                       data_params: Mapping[str, JSONValue]) -> str:
    """``architecture-<hash>`` of the search space and the data set.

    Why derived: the same search over the same data is the same study, so running the command
    again continues it (Optuna refuses a changed space in one study anyway).
    """
    payload = json.dumps({"config": dict(config), "data": dict(data_params)}, sort_keys=True,
                         default=str)
    return f"{DEFAULT_STUDY_PREFIX}-{hashlib.sha256(payload.encode()).hexdigest()[:10]}"


def check_study_name(name: str) -> None:
    """Refuse an empty study name: it would silently stand for a generated one."""
    if not name.strip():
        raise InvalidArgumentError("the study name is empty; give a name, or leave --study out "
                                   "for one derived from the search space and data")


def check_storage(url: str) -> None:
    """Refuse a storage URL that cannot be what the user meant, before anything is created.

    Why: Optuna creates a SQLite file wherever its URL points, so a mistyped folder would start
    a new, empty study (and a new parent run) instead of joining the one the user named.
    """
    if url.startswith("sqlite:///"):
        folder = Path(url[len("sqlite:///"):]).parent
        if not folder.is_dir():
            raise InvalidArgumentError(
                f"storage {url!r}: the folder {str(folder.resolve())!r} does not exist "
                "(create it first, or fix the path)")
    elif not url.startswith(("postgresql", "mysql")):
        raise InvalidArgumentError(
            f"storage must be a sqlite:/// or postgresql:// URL, got {url!r}")


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats; a new SQLite file is created under a file lock."""
    import optuna
    from filelock import FileLock

    engine_kwargs: EngineKwargs = {}
    lock_path: Path | None = None
    if url.startswith("sqlite:///"):
        database = Path(url[len("sqlite:///"):])
        database.parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
        lock_path = database.with_name(database.name + ".lock")
    elif not url.startswith(("postgresql", "mysql")):
        raise TrainerConfigError(
            f"--storage must be a sqlite:/// or postgresql:// URL, got {url!r}"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if lock_path is not None:
            with FileLock(str(lock_path)):
                return _rdb_storage(url, engine_kwargs)
        with _schema_lock(url):
            return _rdb_storage(url, engine_kwargs)


@contextlib.contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    """Hold the server database's advisory lock while Optuna makes (or finds) its tables.

    Why: Optuna's storage creates its tables when they are missing, and two processes that
    both find them missing both create them; the database then refuses one of the two.
    """
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        connection = engine.connect()
    except Exception as error:  # a bad URL, a missing driver, a database that does not answer
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TrainerConfigError(f"the study storage {url!r} cannot be opened: {first}") from None
    postgres = engine.dialect.name == "postgresql"
    lock, unlock = (("select pg_advisory_lock(:key)", "select pg_advisory_unlock(:key)")
                    if postgres else ("select get_lock(:key, :wait)", "select release_lock(:key)"))
    key = SCHEMA_LOCK_KEY if postgres else f"agentnn-optuna-{SCHEMA_LOCK_KEY}"
    try:
        connection.execute(sqlalchemy.text(lock), {"key": key, "wait": SCHEMA_LOCK_WAIT_S})
        yield
    finally:
        with contextlib.suppress(Exception):  # closing the connection lets go of it anyway
            connection.execute(sqlalchemy.text(unlock), {"key": key})
        connection.close()
        engine.dispose()


def _rdb_storage(url: str, engine_kwargs: EngineKwargs) -> optuna.storages.RDBStorage:
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    try:
        return optuna.storages.RDBStorage(
            url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_INTERVAL_S,
            grace_period=HEARTBEAT_GRACE_S,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
        )
    except Exception as error:  # a bad URL, a missing driver, a database that does not answer
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TrainerConfigError(f"the study storage {url!r} cannot be opened: {first}") from None


def open_study(
    name: str, storage: optuna.storages.RDBStorage, sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
) -> tuple[optuna.Study, bool]:
    """(study, created): ``created`` is True in exactly one process, the one that makes it."""
    import optuna

    try:
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                    pruner=pruner, direction="minimize")
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler,
                                 pruner=pruner), False


def wait_for_parent_run(study: optuna.Study, timeout: float = PARENT_WAIT_S) -> str | None:
    """The parent run id the creating process stores; None when it never came."""
    deadline = time.monotonic() + timeout
    while True:
        parent = study.user_attrs.get(PARENT_RUN_ATTR)
        if parent:
            return str(parent)
        if time.monotonic() >= deadline:
            return None
        time.sleep(PARENT_POLL_S)
        study = _reload(study)


def _reload(study: optuna.Study) -> optuna.Study:
    import optuna

    return optuna.load_study(study_name=study.study_name, storage=study._storage,
                             sampler=study.sampler, pruner=study.pruner)


def find_parent_run(client: MlflowClient, experiment_id: str, name: str) -> str | None:
    """The oldest run tagged with this study that is not a trial (the parent), if any.

    Used when the process that created a study died before storing its parent run id.
    """
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`{STUDY_TAG}` = '{name}'",
        order_by=["attributes.start_time ASC"], max_results=50,
    )
    for run in runs:
        if TRIAL_TAG not in run.data.tags:
            run_id: str = run.info.run_id
            return run_id
    return None


def mark_trial_owner(trial: optuna.Trial) -> None:
    """Record which process runs a trial, so a later start can tell it was interrupted."""
    trial.set_user_attr(HOST_ATTR, socket.gethostname())
    trial.set_user_attr(PID_ATTR, os.getpid())


def recover_interrupted(study: optuna.Study, client: MlflowClient | None = None) -> list[int]:
    """Fail trials left RUNNING by dead processes of this machine and queue them again.

    Trials of other machines are left to the heartbeat (they may still be running). The
    interrupted trial's child run is ended as KILLED and tagged ``failed``. Returns the
    numbers of the trials recovered.
    """
    import optuna
    from optuna.trial import TrialState

    host = socket.gethostname()
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get(HOST_ATTR) != host or pid_alive(attrs.get(PID_ATTR)):
            continue
        try:
            changed = study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process recovered it first
        if not changed:
            continue
        recovered.append(trial.number)
        study.enqueue_trial(dict(trial.params), user_attrs={RETRY_OF_ATTR: trial.number},
                            skip_if_exists=False)
        run_id = attrs.get(RUN_ID_ATTR)
        if client is not None and run_id:
            client.set_tag(run_id, TRIAL_STATE_TAG, "failed")
            client.set_terminated(run_id, "KILLED")
    return recovered


def worker_share(n_trials: int, workers: int, index: int) -> int:
    """Worker ``index``'s part of the command's trial budget; the parts add up to n_trials."""
    return n_trials // workers + (1 if index < n_trials % workers else 0)


def trial_state_name(state: optuna.trial.TrialState) -> str:
    """complete, pruned, failed, running or waiting: the words the tags and leaderboard use."""
    return {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}.get(
        state.name, state.name.lower()
    )
