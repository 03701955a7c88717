"""`agentnn train <trainer>`: run one of the five trainers with tracking.

The commands are generated from one table, :data:`TRAINERS`: each row names the command, the
trainer module, its config class, the data it trains on and how it runs. Every command takes
the shared options (declared once in :data:`SHARED_OPTIONS`): where the data comes from
(``--data logs.jsonl`` or ``--dataset digits|synthetic``), ``--epochs`` (or a clear refusal),
``--seed``, ``--device``, ``--amp``, a YAML ``--config`` whose keys are the trainer's config
fields, ``--register-as`` and ``--resume-from``; a row adds its own options on top.
Command-line options win over the YAML file. Trainers are imported inside the command bodies,
so ``--help`` never loads torch or MLflow.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeAlias, TypedDict, cast

import typer

from agentnn.cli import console, grammar, verbosity

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from agentnn.data.datasets import LabelledDataset
    from agentnn.data.records import InteractionRecord
    from agentnn.nn_models.training.configs import JSONDict, JSONValue
    from agentnn.nn_models.training.results import TrainResult

app = typer.Typer(help="Train one of the five networks; every run is tracked.",
                  no_args_is_help=True)

DATASETS = ("digits", "synthetic")
LOG, DIGITS, SYNTHETIC = "log", "digits", "synthetic"  # the data kinds a trainer accepts
SYNTHETIC_RECORDS = 2000  # --dataset synthetic: records and agents of the generated log
SYNTHETIC_AGENTS = 4
DEVICE_CHOICES = "auto|cpu|cuda|mps"
PROGRESS_COLUMNS_METRICS = ("val_loss", "val_acc", "val_agent_acc", "val_success_acc")
PROGRESS_BAR_WIDTH = 16  # with the label, count, time and three metrics: 80 columns
MODEL_NAME_FORBIDDEN = ("/", ":")  # MLflow refuses registered model names holding these
RESULT_METRIC_PREFIXES = ("best_", "val_", "test_")


@dataclass(frozen=True)
class Trainer:
    """One row of the table: a command and what it runs."""

    command: str
    module: str
    """Module under ``agentnn.nn_models`` with ``train()`` (or ``launch()``)."""
    config_class: str
    data_kinds: tuple[str, ...]
    """``log`` (--data), ``digits``, ``synthetic`` (--dataset)."""
    summary: str
    """The command's help text."""
    runner: str
    """How it runs: ``epochs``, ``search``, ``stream`` or ``torchrun``."""
    epochs_help: str = "Training epochs."
    epochs_refusal: str | None = None
    """Why ``--epochs`` does not apply; None when it does."""
    extra_options: tuple[str, ...] = ()
    """Names in :data:`EXTRA_OPTIONS` this command adds."""


TRAINERS: tuple[Trainer, ...] = (
    Trainer("advanced", "advanced_training", "AdvancedTrainingConfig", (LOG, DIGITS, SYNTHETIC),
            "Train the advanced network (experiment advanced_training; advanced_training_digits "
            "on --dataset digits).", "epochs",
            extra_options=("mode",)),
    Trainer("multi-task", "multi_task_learning", "MultiTaskConfig", (LOG, SYNTHETIC),
            "Train the multi-task network (experiment multi_task_learning).", "epochs"),
    Trainer("architecture", "dynamic_architecture", "ArchitectureSearchConfig",
            (LOG, DIGITS, SYNTHETIC),
            "Search architectures with Optuna (experiment architecture_optimization): one "
            "parent run per study, one nested run per trial.", "search",
            epochs_help="Epochs per trial.",
            extra_options=("trials", "workers", "study", "storage")),
    Trainer("online", "online_learning", "OnlineConfig", (LOG, SYNTHETIC),
            "Stream a log once through the online learner (experiment online_learning), "
            "one run. --epochs does not apply: the learner sees each record once.", "stream",
            epochs_help="Not accepted: the online learner streams the log once.",
            epochs_refusal="the online learner streams the log once; it has no epochs "
                           "(use updates_per_batch in --config for more steps per batch)"),
    Trainer("distributed", "training_infrastructure", "DistributedConfig",
            (LOG, DIGITS, SYNTHETIC),
            "Data-parallel training under torchrun (experiment distributed_training), one run.",
            "torchrun", extra_options=("nproc",)),
)

# --- options: the shared ones once, then the extras some rows add ------------------------------

OptionSpec: TypeAlias = tuple[object, object]
"""An option as Typer reads it from a signature: (its ``Annotated`` type, its default)."""

SHARED_OPTIONS: dict[str, OptionSpec] = {
    "data": (Annotated[Path | None, typer.Option(
        "--data", help="Interaction log (JSON Lines) to train on.")], None),
    "dataset": (Annotated[str | None, typer.Option(
        "--dataset", help="A built-in data set: digits or synthetic.")], None),
    "config": (Annotated[Path | None, typer.Option(
        "--config", help="YAML file of trainer config keys.")], None),
    "register_as": (Annotated[str | None, typer.Option(
        "--register-as", help="Register the best model under this name.")], None),
    "seed": (Annotated[int | None, typer.Option(
        "--seed", help="Seed for the data split, weights and batches.")], None),
    "device": (Annotated[str | None, typer.Option(
        "--device", help=f"{DEVICE_CHOICES}; auto takes CUDA when present.")], None),
    "amp": (Annotated[bool | None, typer.Option(
        "--amp/--no-amp", help="float16 mixed precision (CUDA only).")], None),
    "resume_from": (Annotated[Path | None, typer.Option(
        "--resume-from", help="Checkpoint file or folder of a run to continue.")], None),
}

EXTRA_OPTIONS: dict[str, OptionSpec] = {
    "mode": (Annotated[str | None, typer.Option(
        "--mode", help="multimodal (success + performance) or classifier (routing; the "
                       "default for --dataset digits).")], None),
    "nproc": (Annotated[int, typer.Option(
        "--nproc", min=1, help="Processes torchrun starts on this machine.")], 2),
    "trials": (Annotated[int | None, typer.Option(
        "--trials", min=1, help="Trials this command runs (its workers share them).")], None),
    "workers": (Annotated[int, typer.Option(
        "--workers", min=1, help="Processes on this machine sharing the --trials budget.")], 1),
    "study": (Annotated[str | None, typer.Option(
        "--study", callback=lambda value: _checked(value, "check_study_name"),
        help="Optuna study to create or join (default: named after the search "
             "space and data).")], None),
    "storage": (Annotated[str | None, typer.Option(
        "--storage", callback=lambda value: _checked(value, "check_storage"),
        help="Optuna storage URL shared by every process (default: a SQLite "
             "file beside the tracking store; postgresql://… for machines).")],
                None),
}



def _checked(value: str | None, check: str) -> str | None:
    """An option value the search's own check accepts; a refusal is a usage error (exit 2)."""
    from agentnn.errors import InvalidArgumentError
    from agentnn.nn_models.search import study

    if value is not None:
        try:
            getattr(study, check)(value)
        except InvalidArgumentError as error:
            raise typer.BadParameter(str(error)) from None
    return value


class _CommandOptions(TypedDict):
    """The options every train command takes (:data:`SHARED_OPTIONS` and ``--epochs``)."""

    data: Path | None
    dataset: str | None
    config: Path | None
    register_as: str | None
    seed: int | None
    device: str | None
    amp: bool | None
    resume_from: Path | None
    epochs: int | None


class TrainOptions(_CommandOptions, total=False):
    """The options a train command was given: the shared ones, and the row's extras."""

    mode: str | None
    nproc: int
    trials: int | None
    workers: int
    study: str | None
    storage: str | None


CONFIG_KEYS = {"epochs": "epochs", "seed": "seed", "device": "device", "amp": "amp",
               "mode": "mode", "trials": "n_trials"}
"""Options that set a config field: option name -> config key."""


# --- helpers -----------------------------------------------------------------------------------


def read_config_file(path: Path | None) -> JSONDict:
    """The YAML config as a dict; a missing file or bad YAML is a one-line error."""
    from agentnn.errors import TrainerConfigError

    if path is None:
        return {}
    try:
        import yaml

        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainerConfigError(f"config file {path} does not exist") from None
    except (OSError, yaml.YAMLError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TrainerConfigError(f"config file {path} is not valid YAML: {first_line}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise TrainerConfigError(
            f"config file {path} must hold a mapping of config keys, got {type(loaded).__name__}"
        )
    return loaded


def merge_options(values: Mapping[str, JSONValue], config_class: type,
                  **overrides: object) -> JSONDict:
    """YAML values with the command-line options that were given laid over them."""
    import dataclasses

    from agentnn.errors import TrainerConfigError

    fields = {item.name for item in dataclasses.fields(config_class)}
    merged = dict(values)
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in fields:
            option = next((name for name, field in CONFIG_KEYS.items() if field == key), key)
            raise TrainerConfigError(f"--{option} does not apply to this trainer")
        merged[key] = value
    return merged


def check_data_choice(trainer: Trainer, data: Path | None, dataset: str | None) -> None:
    """Exactly one source, and one of the kinds this trainer learns from."""
    from agentnn.errors import TrainerConfigError

    datasets = [kind for kind in trainer.data_kinds if kind != LOG]
    if (data is None) == (dataset is None):
        raise TrainerConfigError("give exactly one of --data <logs.jsonl> or --dataset "
                                 f"<{'|'.join(datasets)}>")
    if dataset is not None and dataset not in DATASETS:
        raise TrainerConfigError(f"--dataset must be one of {', '.join(DATASETS)}; got {dataset!r}")
    if dataset is not None and dataset not in datasets:
        raise TrainerConfigError(
            f"`agentnn train {trainer.command}` learns from an interaction log; --dataset "
            f"{dataset!r} has none (use --dataset {' or '.join(datasets)} or --data logs.jsonl)"
        )


def load_data(data: Path | None, dataset: str | None, seed: int) -> LabelledDataset:
    """The data set for ``--data`` or ``--dataset``, split by ``seed``."""
    from agentnn.data.datasets import build_interaction_dataset, load_dataset
    from agentnn.data.synthetic import synthesize_interactions

    if dataset == "synthetic":
        records = synthesize_interactions(SYNTHETIC_RECORDS, SYNTHETIC_AGENTS, seed=seed)
        return build_interaction_dataset(records, seed=seed, source="synthetic")
    return load_dataset(str(data) if data is not None else "digits", seed=seed)


def run_with_progress(call: Callable[..., TrainResult], *, total: int | None,
                      hook: str = "on_epoch", label: str = "epoch") -> TrainResult:
    """Run a training ``call(**{hook: callback})`` and show its progress as the callback reports.

    On a terminal, a bar that appears with the first finished epoch, so an error before it
    (unusable data, a checkpoint that does not fit) prints no bar. Elsewhere (a pipe, a log
    file, CI) Rich draws only the last frame, so one line per epoch instead.
    """
    if not console.is_terminal():
        def line(done: int, metrics: dict[str, float]) -> None:
            console.message(progress_line(label, done, total, metrics))

        return call(**{hook: line})
    progress = progress_display(console.stdout())
    task: list[TaskID] = []
    try:
        def advance(done: int, metrics: dict[str, float]) -> None:
            if not task:
                progress.start()
                task.append(progress.add_task(label, total=total, metrics=""))
            progress.update(task[0], completed=done, metrics=progress_metrics(metrics))

        return call(**{hook: advance})
    finally:
        if task:
            progress.stop()


def progress_display(target: Console) -> Progress:
    """The progress bar of a training: label, bar, count, time and the headline metrics, in
    80 columns (the metrics in :func:`progress_metrics`'s short form)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]{task.description}"),
                    BarColumn(bar_width=PROGRESS_BAR_WIDTH), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("{task.fields[metrics]}"),
                    console=target, transient=False)


def progress_metrics(metrics: Mapping[str, float]) -> str:
    """The headline metrics, short: ``loss 0.213 agent 0.912 success 0.871``."""
    def short(key: str) -> str:
        name = key.removeprefix("val_")
        return name.removesuffix("_acc") if name != "acc" else name

    return " ".join(f"{short(key)} {metrics[key]:.3f}" for key in PROGRESS_COLUMNS_METRICS
                    if key in metrics)


def progress_line(label: str, done: int, total: int | None, metrics: Mapping[str, float]) -> str:
    """One line per epoch where no bar can be drawn: ``epoch 3/5  val_loss 0.2130  …``."""
    count = f"{done}/{total}" if total else str(done)
    shown = "  ".join(f"{key} {metrics[key]:.4f}" for key in PROGRESS_COLUMNS_METRICS
                      if key in metrics)
    return f"{label} {count}  {shown}".rstrip()


def print_result(result: TrainResult) -> None:
    """The run id, the model and the headline metrics of a finished training run."""
    print(f"run id:      {result.run_id}")
    if getattr(result, "study", None):
        print(f"study:       {result.study}")
    if result.model_uri:
        print(f"model:       {result.model_uri}")
    if result.registered_version:
        print(f"registered:  version {result.registered_version}")
    if result.checkpoint_dir:
        print(f"checkpoints: {result.checkpoint_dir}")
    rows = [(key, value) for key, value in sorted(result.best_metrics.items())
            if key.startswith(RESULT_METRIC_PREFIXES)]
    console.print_table("final metrics (best epoch)", ("metric", "value"), rows)


# --- runners: one per way of running ------------------------------------------------------------


class _SeededConfig(Protocol):
    """A checked trainer config as the runners read it: every trainer's config has a seed."""

    seed: int


class _EpochsConfig(_SeededConfig, Protocol):
    epochs: int


class _SearchConfig(_SeededConfig, Protocol):
    n_trials: int


class _StreamConfig(_SeededConfig, Protocol):
    batch_size: int


def _run_epochs(trainer: Trainer, module: ModuleType, values: JSONDict, checked: _EpochsConfig,
                options: TrainOptions) -> TrainResult:
    data = load_data(options["data"], options["dataset"], checked.seed)
    resume = options["resume_from"]
    return run_with_progress(
        lambda on_epoch: module.train(values, data, register_as=options["register_as"],
                                      resume_from=str(resume) if resume else None,
                                      on_epoch=on_epoch),
        total=checked.epochs)


def _run_search(trainer: Trainer, module: ModuleType, values: JSONDict, checked: _SearchConfig,
                options: TrainOptions) -> TrainResult:
    import optuna

    from agentnn.errors import TrainerConfigError

    if options["resume_from"] is not None:
        raise TrainerConfigError("the search resumes from its study: run the command again "
                                 "with the same --study and --storage (no --resume-from)")
    # Optuna says "Trial 2 finished …" per trial at INFO; the bar says it already (-v: both)
    optuna.logging.set_verbosity(optuna.logging.INFO if verbosity.is_verbose()
                                 else optuna.logging.WARNING)
    data = load_data(options["data"], options["dataset"], checked.seed)
    return run_with_progress(
        lambda on_trial: module.train(values, data, register_as=options["register_as"],
                                      study=options["study"], storage=options["storage"],
                                      workers=options["workers"], on_trial=on_trial),
        total=checked.n_trials, hook="on_trial", label="trial")


def _run_stream(trainer: Trainer, module: ModuleType, values: JSONDict, checked: _StreamConfig,
                options: TrainOptions) -> TrainResult:
    import math

    from agentnn.data.records import load_interactions
    from agentnn.data.synthetic import synthesize_interactions

    source: Path | list[InteractionRecord]
    if options["data"] is not None:
        source = options["data"]
        n_records = len(load_interactions(source))
    else:
        source = synthesize_interactions(SYNTHETIC_RECORDS, SYNTHETIC_AGENTS, seed=checked.seed)
        n_records = len(source)
    resume = options["resume_from"]
    return run_with_progress(
        lambda on_epoch: module.train(values, source, register_as=options["register_as"],
                                      resume_from=str(resume) if resume else None,
                                      on_epoch=on_epoch),
        total=math.ceil(n_records / checked.batch_size), label="update")


def _run_torchrun(trainer: Trainer, module: ModuleType, values: JSONDict,
                  checked: _EpochsConfig, options: TrainOptions) -> TrainResult:
    import tempfile

    from agentnn.data.records import write_interactions
    from agentnn.data.synthetic import synthesize_interactions

    data, dataset = options["data"], options["dataset"]
    with tempfile.TemporaryDirectory(prefix="agentnn-synthetic-") as tmp:
        if dataset == "synthetic":  # every torchrun process loads the data itself: from a file
            data = write_interactions(
                synthesize_interactions(SYNTHETIC_RECORDS, SYNTHETIC_AGENTS, seed=checked.seed),
                Path(tmp) / "synthetic.jsonl")
            dataset = None
        console.stderr().print(f"launching torchrun with {options['nproc']} processes…")
        source = data
        return run_with_progress(
            lambda on_epoch: module.launch(options["nproc"], values, data=source,
                                           dataset=dataset, register_as=options["register_as"],
                                           resume_from=options["resume_from"],
                                           on_epoch=on_epoch),
            total=checked.epochs)


Runner: TypeAlias = Callable[[Trainer, ModuleType, "JSONDict", Any, TrainOptions], "TrainResult"]
"""A runner; its config is ``Any`` because the config class is looked up by name at run time
(each runner states the fields it reads)."""

RUNNERS: dict[str, Runner] = {"epochs": _run_epochs, "search": _run_search,
                              "stream": _run_stream, "torchrun": _run_torchrun}


def check_options(trainer: Trainer, options: TrainOptions) -> None:
    """What can be refused from the command line alone, before anything loads: the data
    choice, options this trainer does not take, a checkpoint that is not there, a model name
    MLflow would refuse only after the training."""
    from agentnn.errors import TrainerConfigError

    if trainer.epochs_refusal and options.get("epochs") is not None:
        raise TrainerConfigError(f"--epochs does not apply: {trainer.epochs_refusal}")
    check_data_choice(trainer, options["data"], options["dataset"])
    for option, path, what in (("--data", options["data"], "file"),
                               ("--config", options["config"], "file"),
                               ("--resume-from", options["resume_from"],
                                "checkpoint file or folder")):
        if path is not None and not path.exists():
            raise TrainerConfigError(f"{option} {path}: no such {what}")
    name = options["register_as"]
    if name is not None and (not name.strip() or any(c in name for c in MODEL_NAME_FORBIDDEN)):
        raise TrainerConfigError(f"--register-as {name!r}: a registered model name must not be "
                                 f"empty or hold {' or '.join(MODEL_NAME_FORBIDDEN)}")


def run_trainer(trainer: Trainer, options: TrainOptions) -> None:
    """Parse, check, run, print: the body of every train command.

    Everything is checked before any run exists or any progress is drawn. What the command line
    alone gets wrong is a usage error (exit code 2); a bad YAML config or data file is an
    input error (exit code 1).
    """
    import importlib

    from agentnn.errors import TrainerConfigError
    from agentnn.nn_models.training.configs import check_config

    try:
        check_options(trainer, options)
    except TrainerConfigError as error:
        raise grammar.usage_error(str(error)) from None
    module = importlib.import_module(f"agentnn.nn_models.{trainer.module}")
    config_class = getattr(module, trainer.config_class)
    values = read_config_file(options["config"])
    if ("mode" in trainer.extra_options and options.get("mode") is None
            and options["dataset"] == "digits" and "mode" not in values):
        options = {**options, "mode": "classifier"}
    overrides = {CONFIG_KEYS[name]: options.get(name) for name in CONFIG_KEYS}
    try:  # the options on their own: a bad --device is the command line's fault
        check_config(merge_options({}, config_class, **overrides), config_class)
    except TrainerConfigError as error:
        raise grammar.usage_error(str(error)) from None
    values = merge_options(values, config_class, **overrides)
    checked = check_config(values, config_class)  # with the YAML file; fails before any run
    print_result(RUNNERS[trainer.runner](trainer, module, values, checked, options))


# --- the commands, generated from the table ------------------------------------------------------


def _command_for(trainer: Trainer) -> Callable[..., None]:
    """A Typer command whose signature is the shared options, --epochs and the row's extras."""
    epochs = (Annotated[int | None, typer.Option("--epochs", min=1, help=trainer.epochs_help)],
              None)
    options = {"data": SHARED_OPTIONS["data"], "dataset": SHARED_OPTIONS["dataset"],
               "epochs": epochs,
               **{key: value for key, value in SHARED_OPTIONS.items()
                  if key not in ("data", "dataset")},
               **{name: EXTRA_OPTIONS[name] for name in trainer.extra_options}}

    def command(**given: Any) -> None:  # Typer calls it with the signature set below
        run_trainer(trainer, cast("TrainOptions", given))

    parameters = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                    annotation=annotation)
                  for name, (annotation, default) in options.items()]
    # Typer reads the options from the signature; a function object declares no __signature__
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {name: annotation for name, (annotation, _) in options.items()}
    command.__name__ = trainer.command.replace("-", "_")
    command.__doc__ = trainer.summary
    return command


for _trainer in TRAINERS:
    app.command(_trainer.command)(_command_for(_trainer))
