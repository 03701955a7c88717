"""Exceptions that agentnn raises and users can catch.

Every exception derives from :class:`AgentNNError`, so ``except AgentNNError`` catches them
all. Errors about bad input to the logging calls also derive from the builtin a user would
expect (``TypeError``/``ValueError``), so code written against plain MLflow keeps working.

    AgentNNError
    ├── ConfigError                 a setting is wrong
    │   ├── TrackingURIError        the tracking URI is malformed or its store cannot be used
    │   │   ├── StoreUnreachableError   the store does not answer (refused, timed out, no host)
    │   │   ├── StoreNotFoundError      a read found no MLflow store at a sqlite:/// path
    │   │   ├── AuthenticationError     the store refused the credentials (HTTP 401)
    │   │   └── PermissionDeniedError   the credentials lack a permission (HTTP 403)
    │   ├── LegacyFileStoreError    the target is an old MLflow file store
    │   └── MigrationError          a legacy file store cannot be moved into the SQLite store
    ├── InputError                  a value handed to agentnn is not usable
    │   ├── InvalidArgumentError    (also ValueError) an argument is outside what it allows
    │   ├── InvalidMetricError      (also TypeError) a metric value is not a number
    │   ├── InvalidKeyError         (also ValueError) a key breaks MLflow's naming rules
    │   ├── ParamChangedError       (also ValueError) a param was logged again with another value
    │   ├── DataError               (also ValueError) bad records in a data file, or unusable data
    │   ├── TrainerConfigError      (also ValueError) a trainer config value is not usable
    │   ├── InvalidQueryError       (also ValueError) a run filter or order-by the store rejects
    │   └── AmbiguousRunIdError     (also ValueError) a short run id matches several runs
    ├── TrackingError               the logging path failed
    │   └── JournalError            the local journal cannot be written or read
    │       └── DamagedJournalError a journal's header or a chunk of it is unreadable
    ├── TrainingJobError            the processes of a training job failed (a torchrun rank)
    ├── NotFoundError               (also LookupError) a run, experiment, model or alias is unknown
    │   └── RunHasNoModelError      a run to register has no logged model
    └── ModelError                  a model cannot be logged or loaded
        ├── ModelIntegrityError     the weights do not match their recorded sha256
        │   └── MalformedModelError a model file is malformed, foreign or names a path outside
        ├── UnsafeModelError        loading would unpickle code and trust=True was not given
        └── UntrustedBuilderError   a model spec names a builder that is not registered

One warning class, for what does not stop a run but needs the caller to act (raised with
:func:`warnings.warn`, so scripts see it on stderr and can filter or catch it)::

    UserWarning
    ├── TrackingWarning             a run went to the fallback store; records wait or were refused
    └── SettingIgnoredWarning       a setting was taken but does not apply here (--amp on the CPU)

    DeprecationWarning
    └── AgentNNDeprecationWarning   a config key, builder or URI form agentnn will remove

    KeyboardInterrupt
    └── TrainingInterrupted         Ctrl-C (or SIGTERM) stopped a training; names its checkpoint

Messages never show a secret: :class:`AgentNNError` masks URI passwords and secret query
values in its text (``agentnn.masking``), and the store errors mask the URI they keep.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentnn.masking import mask_text, mask_uri

if TYPE_CHECKING:
    from pathlib import Path


class AgentNNError(Exception):
    """Base class of every error agentnn raises on purpose.

    Its text is masked (URI passwords, secret query values), whatever a subclass put in it.
    """

    def __str__(self) -> str:
        return mask_text(super().__str__())

    def __reduce__(self) -> tuple[object, ...]:
        """Copy and pickle whatever a subclass's ``__init__`` takes (errors cross processes)."""
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[AgentNNError], args: tuple[object, ...],
             state: dict[str, object]) -> AgentNNError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


# --- configuration -------------------------------------------------------------------------


class ConfigError(AgentNNError):
    """A setting is missing, malformed or points somewhere unusable."""


class TrackingURIError(ConfigError):
    """The tracking URI is malformed or its store does not answer.

    Keeps the URI and the setting it came from, so the message says where to fix it.
    """

    def __init__(self, uri: str, source: str, reason: str) -> None:
        self.uri = mask_uri(uri)
        self.source = source
        self.reason = mask_text(reason)
        super().__init__(f"tracking URI {self.uri!r} (from {source}): {self.reason}")


class StoreUnreachableError(TrackingURIError):
    """The store does not answer: connection refused, timed out, unknown host or database down.

    The writer treats it as an outage to wait out; everything else reports it in one line.
    """


class StoreNotFoundError(TrackingURIError):
    """A read asked a ``sqlite:///`` path that holds no store (a typo, most often).

    Reads never create a store; ``suggestion`` names an existing store nearby, if any.
    """

    def __init__(self, uri: str, source: str, path: str, suggestion: str | None) -> None:
        self.path = path
        self.suggestion = suggestion
        hint = (f"did you mean {suggestion}?" if suggestion
                else "check the path, or train first to create the store")
        super().__init__(uri, source, f"no MLflow store at {path}; {hint}")


class AuthenticationError(TrackingURIError):
    """The store refused the credentials (HTTP 401): wrong, missing or expired."""

    def __init__(self, uri: str, source: str, detail: str = "") -> None:
        super().__init__(
            uri, source, "authentication failed"
            + (f" ({detail})" if detail else "")
            + "; check MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD, "
            "MLFLOW_TRACKING_TOKEN or the user:password in the URI",
        )


class PermissionDeniedError(TrackingURIError):
    """The credentials are valid but lack a permission for this action (HTTP 403)."""

    def __init__(self, uri: str, source: str, detail: str = "") -> None:
        super().__init__(
            uri, source, "permission denied" + (f" ({detail})" if detail else "")
            + "; ask the server's admin for the permission, or use another account",
        )


class LegacyFileStoreError(ConfigError):
    """The target holds an old MLflow file store, which MLflow 3 refuses to open."""

    def __init__(self, path: str, migrate_command: str) -> None:
        self.path = path
        self.migrate_command = migrate_command
        super().__init__(
            f"{path} holds a legacy MLflow file store, which MLflow 3 no longer opens; "
            f"migrate it with: {migrate_command}  (or point MLFLOW_TRACKING_URI elsewhere)"
        )


class MigrationError(ConfigError):
    """A legacy file store cannot be moved into the SQLite store; nothing was changed."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"cannot migrate {source}: {reason}")


# --- bad input -----------------------------------------------------------------------------


class InputError(AgentNNError):
    """A value handed to agentnn cannot be used as it is."""


class InvalidArgumentError(InputError, ValueError):
    """An argument is outside the values it allows (a mode, a missing file, …)."""


class InvalidMetricError(InputError, TypeError):
    """A metric value is not a real number."""

    def __init__(self, key: str, value: object) -> None:
        self.key = key
        self.value = value
        super().__init__(
            f"metric {key!r} must be a real number, got {type(value).__name__} {value!r:.80}"
        )


class InvalidKeyError(InputError, ValueError):
    """A metric, param or tag key breaks MLflow's naming rules."""

    def __init__(self, key: object, reason: str) -> None:
        self.key = key
        super().__init__(f"invalid key {key!r:.300}: {reason}")


class ParamChangedError(InputError, ValueError):
    """A param was logged again with a different value; MLflow keeps params immutable."""

    def __init__(self, key: str, old: str, new: str) -> None:
        self.key = key
        self.old = old
        self.new = new
        super().__init__(
            f"param {key!r} was already logged as {old!r:.200} and cannot change to {new!r:.200}; "
            "params are immutable in MLflow: log the new value under another key or in a new run"
        )


class DataError(InputError, ValueError):
    """Data is not usable: a file holds invalid records (named by file, line and field), or a
    data set is empty, too small or asked for with impossible sizes.

    ``problems`` keeps ``(line, field, reason)`` of the first bad lines of a file.
    """

    def __init__(
        self,
        message: str,
        path: str | None = None,
        problems: list[tuple[int, str | None, str]] | None = None,
    ) -> None:
        self.path = path
        self.problems = list(problems or [])
        super().__init__(message)


class TrainerConfigError(InputError, ValueError):
    """A trainer was given a config value, data set or shape it cannot train with."""


class InvalidQueryError(InputError, ValueError):
    """A run filter or order-by clause is not valid MLflow search syntax.

    Keeps the clause and the store's reason, so the message shows both.
    """

    def __init__(self, kind: str, clause: str, reason: str) -> None:
        self.kind = kind
        self.clause = clause
        self.reason = reason
        super().__init__(f"bad {kind} {clause!r}: {reason}")


class AmbiguousRunIdError(InputError, ValueError):
    """A run id prefix (as ``agentnn model runs`` shows it) matches more than one run.

    Keeps the prefix and the matching ids, so the message lists them, as git does.
    """

    def __init__(self, prefix: str, candidates: list[str]) -> None:
        self.prefix = prefix
        self.candidates = candidates
        super().__init__(f"run id {prefix!r} is ambiguous; it matches "
                         f"{', '.join(candidates)}: give more characters")


# --- tracking ------------------------------------------------------------------------------


class TrackingError(AgentNNError):
    """The logging path could not do its job."""


class TrackingWarning(UserWarning):
    """The run goes on, but its records need the caller's attention: the run was kept in the
    local fallback store, the store has not confirmed every record yet, or it refused some (the
    message says where they are kept and what to run)."""


class SettingIgnoredWarning(UserWarning):
    """A setting was accepted but does not apply where the code runs (``--amp`` on the CPU):
    training goes on without it, and the caller should know the run is not what was asked."""


class AgentNNDeprecationWarning(DeprecationWarning):
    """Something agentnn will remove (a renamed config key, a stage URI), with its replacement
    and the version that removes it. Python hides ``DeprecationWarning`` outside ``__main__``;
    the ``agentnn`` command shows these, once each."""


class JournalError(TrackingError):
    """The local journal of a run cannot be written or read."""


class DamagedJournalError(JournalError):
    """A journal's header or one of its chunks is torn or corrupt (a crash, a bad disk, an edit).

    Keeps the journal's path, the byte offset of the damage and the reason.
    """

    def __init__(self, path: str, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        super().__init__(f"journal {path}: damaged at byte {offset} ({reason})")


# --- training jobs -------------------------------------------------------------------------


class TrainingJobError(AgentNNError):
    """A training job's processes failed, e.g. a rank of a ``torchrun`` job exited with an error.

    Keeps the exit code and the failing process's error line, which the message repeats.
    """

    def __init__(self, exit_code: int | None, detail: str) -> None:
        self.exit_code = exit_code
        self.detail = detail
        status = "timed out" if exit_code is None else f"exit {exit_code}"
        super().__init__(f"the distributed training job failed ({status}): {detail}")



class SearchFailedError(AgentNNError):
    """An architecture search ended without a result: its worker processes failed, or no
    trial completed. The trials that did finish stay in the study, named in the message."""

    def __init__(self, study: str, reason: str) -> None:
        self.study = study
        self.reason = reason
        super().__init__(f"architecture search {study!r}: {reason}")

# --- lookups -------------------------------------------------------------------------------


class NotFoundError(AgentNNError, LookupError):
    """A run, experiment, registered model, version or alias does not exist."""

    def __init__(self, kind: str, name: str, hint: str = "") -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"{kind} {name!r} not found" + (f"; {hint}" if hint else ""))


class RunHasNoModelError(NotFoundError):
    """A run has no logged model to register (no LoggedModel and no MLmodel artifact)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(
            "model in run", run_id,
            "the run logged no model (no MLflow LoggedModel and no artifact folder with an "
            "MLmodel file); log one with mlflow.<flavor>.log_model or agentnn's log_torch_model",
        )


# --- models --------------------------------------------------------------------------------


class ModelError(AgentNNError):
    """A model cannot be logged, found or loaded."""


class ModelIntegrityError(ModelError):
    """A weight file does not match the sha256 recorded when it was logged."""

    expected: str | None  # None on a MalformedModelError: no hash was compared
    actual: str | None

    def __init__(self, path: str, expected: str, actual: str) -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"weights {path} have sha256 {actual[:12]}…, expected {expected[:12]}…: "
            "the file was changed after it was logged; refusing to load it"
        )


class MalformedModelError(ModelIntegrityError):
    """A model file is malformed, tampered or foreign: bad JSON or YAML, wrong types, weights
    that are not safetensors or do not fit, a path that leaves the model folder.

    Keeps the file and the reason, so the message names both in one line.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        self.expected = self.actual = None
        ModelError.__init__(self, f"model file {path} refused: {reason}")


class UnsafeModelError(ModelError):
    """Loading the model would unpickle code; needs an explicit ``trust=True``."""


class UntrustedBuilderError(ModelError):
    """A model spec names a builder that is not in the registry of builders (or a config key
    the builder did not declare); calling whatever a file names could run any code."""

    def __init__(self, builder: str, reason: str) -> None:
        self.builder = builder
        super().__init__(f"model builder {builder!r} refused: {reason}")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, in the ``agentnn`` command) stopped a training between or during
    epochs; the last finished epoch was written as a checkpoint first.

    A ``KeyboardInterrupt``, so code that stops on Ctrl-C still does (the run is ``KILLED``);
    it keeps what a user needs to go on: the run, the checkpoint and the epoch it holds.
    """

    def __init__(self, run_id: str, checkpoint: Path | None, epoch: int) -> None:
        self.run_id = run_id
        self.checkpoint = checkpoint
        self.epoch = epoch
        where = (f"checkpoint {checkpoint} (epoch {epoch})" if checkpoint is not None
                 else "no checkpoint (no epoch finished)")
        super().__init__(f"run {run_id} interrupted; {where}")
