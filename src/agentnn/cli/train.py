"""`agentnn train <trainer>`: run one of the five trainers with tracking.

Every command takes the same options: where the data comes from (``--data logs.jsonl`` or
``--dataset digits|synthetic``), ``--epochs``, ``--seed``, a YAML ``--config`` whose keys are
the trainer's config fields, ``--register-as`` and ``--resume-from``. Command-line options
win over the YAML file. Trainers are imported inside the command bodies so ``--help`` never
loads torch or MLflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from agentnn.cli import console

app = typer.Typer(help="Train one of the five networks; every run is tracked.",
                  no_args_is_help=True)

DATASETS = ("digits", "synthetic")
SYNTHETIC_RECORDS = 2000  # --dataset synthetic: records and agents of the generated log
SYNTHETIC_AGENTS = 4
PROGRESS_COLUMNS_METRICS = ("val_loss", "val_acc", "val_agent_acc", "val_success_acc")
RESULT_METRIC_PREFIXES = ("best_", "val_", "test_")

DataOption = Annotated[
    Path | None, typer.Option("--data", help="Interaction log (JSON Lines) to train on.")
]
DatasetOption = Annotated[
    str | None, typer.Option("--dataset", help="A built-in data set: digits or synthetic.")
]
EpochsOption = Annotated[int | None, typer.Option("--epochs", min=1, help="Training epochs.")]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML file of trainer config keys.")
]
RegisterOption = Annotated[
    str | None, typer.Option("--register-as", help="Register the best model under this name.")
]
SeedOption = Annotated[
    int | None, typer.Option("--seed", help="Seed for the data split, weights and batches.")
]
ResumeOption = Annotated[
    Path | None,
    typer.Option("--resume-from", help="Checkpoint file or folder of a run to continue."),
]


# --- helpers -----------------------------------------------------------------------------------


def read_config_file(path: Path | None) -> dict[str, Any]:
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


def merge_options(values: dict[str, Any], config_class: type, **overrides: Any) -> dict[str, Any]:
    """YAML values with the command-line options that were given laid over them."""
    import dataclasses

    from agentnn.errors import TrainerConfigError

    fields = {item.name for item in dataclasses.fields(config_class)}
    merged = dict(values)
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in fields:
            raise TrainerConfigError(f"--{key} does not apply to this trainer")
        merged[key] = value
    return merged


def load_data(data: Path | None, dataset: str | None, seed: int) -> Any:
    """The data set for ``--data`` or ``--dataset``, split by ``seed``."""
    from agentnn.errors import TrainerConfigError

    if (data is None) == (dataset is None):
        raise TrainerConfigError("give exactly one of --data <logs.jsonl> or --dataset "
                                 f"<{'|'.join(DATASETS)}>")
    if dataset is not None and dataset not in DATASETS:
        raise TrainerConfigError(f"--dataset must be one of {', '.join(DATASETS)}; got {dataset!r}")
    from agentnn.data import build_interaction_dataset, load_dataset, synthesize_interactions

    if dataset == "synthetic":
        records = synthesize_interactions(SYNTHETIC_RECORDS, SYNTHETIC_AGENTS, seed=seed)
        return build_interaction_dataset(records, seed=seed, source="synthetic")
    return load_dataset(str(data) if data is not None else "digits", seed=seed)


def run_with_progress(trainer: Any, config: dict[str, Any], data: Any, *, total: int | None,
                      register_as: str | None, resume_from: Path | None) -> Any:
    """Call ``trainer.train`` with a Rich progress bar advanced by its ``on_epoch`` hook."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("{task.fields[metrics]}")]
    with Progress(*columns, console=console.stdout(), transient=False) as progress:
        bar = progress.add_task("epoch", total=total, metrics="")

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            shown = "  ".join(f"{key} {metrics[key]:.4f}" for key in PROGRESS_COLUMNS_METRICS
                              if key in metrics)
            progress.update(bar, completed=epoch, metrics=shown)

        return trainer.train(config, data, register_as=register_as,
                             resume_from=str(resume_from) if resume_from else None,
                             on_epoch=on_epoch)


def print_result(result: Any) -> None:
    """The run id, the model and the headline metrics of a finished training run."""
    print(f"run id:      {result.run_id}")
    if result.model_uri:
        print(f"model:       {result.model_uri}")
    if result.registered_version:
        print(f"registered:  version {result.registered_version}")
    if result.checkpoint_dir:
        print(f"checkpoints: {result.checkpoint_dir}")
    rows = [(key, value) for key, value in sorted(result.best_metrics.items())
            if key.startswith(RESULT_METRIC_PREFIXES)]
    console.print_table("final metrics (best epoch)", ("metric", "value"), rows)


def _train_epochs(trainer_module: str, config_class: str, config: dict[str, Any], data: Any,
                  register_as: str | None, resume_from: Path | None,
                  total: int | None = None) -> None:
    import importlib

    from agentnn.nn_models.common import check_config

    trainer = importlib.import_module(f"agentnn.nn_models.{trainer_module}")
    checked = check_config(config, getattr(trainer, config_class))  # fails before any run
    if total is None:
        total = getattr(checked, "epochs", None)
    result = run_with_progress(trainer, config, data, total=total, register_as=register_as,
                               resume_from=resume_from)
    print_result(result)


def _seed(values: dict[str, Any], seed: int | None) -> int:
    return seed if seed is not None else int(values.get("seed", 0))


# --- commands ----------------------------------------------------------------------------------


@app.command()
def advanced(
    data: DataOption = None,
    dataset: DatasetOption = None,
    epochs: EpochsOption = None,
    config: ConfigOption = None,
    register_as: RegisterOption = None,
    seed: SeedOption = None,
    resume_from: ResumeOption = None,
    mode: Annotated[
        str | None,
        typer.Option("--mode", help="multimodal (success + performance) or classifier "
                                    "(routing; the default for --dataset digits)."),
    ] = None,
) -> None:
    """Train the advanced network (experiment advanced_training)."""
    from agentnn.nn_models.advanced_training import AdvancedTrainingConfig

    values = read_config_file(config)
    if dataset == "digits" and mode is None and "mode" not in values:
        mode = "classifier"
    values = merge_options(values, AdvancedTrainingConfig, epochs=epochs, seed=seed, mode=mode)
    loaded = load_data(data, dataset, _seed(values, seed))
    _train_epochs("advanced_training", "AdvancedTrainingConfig", values, loaded, register_as,
                  resume_from)


@app.command("multi-task")
def multi_task(
    data: DataOption = None,
    dataset: DatasetOption = None,
    epochs: EpochsOption = None,
    config: ConfigOption = None,
    register_as: RegisterOption = None,
    seed: SeedOption = None,
    resume_from: ResumeOption = None,
) -> None:
    """Train the multi-task network (experiment multi_task_learning)."""
    from agentnn.nn_models.multi_task_learning import MultiTaskConfig

    values = merge_options(read_config_file(config), MultiTaskConfig, epochs=epochs, seed=seed)
    loaded = load_data(data, dataset, _seed(values, seed))
    _train_epochs("multi_task_learning", "MultiTaskConfig", values, loaded, register_as,
                  resume_from)


@app.command()
def architecture(
    data: DataOption = None,
    dataset: DatasetOption = None,
    epochs: EpochsOption = None,
    config: ConfigOption = None,
    register_as: RegisterOption = None,
    seed: SeedOption = None,
    resume_from: ResumeOption = None,
) -> None:
    """Search architectures (experiment architecture_optimization); epochs per candidate."""
    from agentnn.nn_models.common import check_config
    from agentnn.nn_models.dynamic_architecture import ArchitectureSearchConfig

    values = merge_options(read_config_file(config), ArchitectureSearchConfig, epochs=epochs,
                           seed=seed)
    checked = check_config(values, ArchitectureSearchConfig)
    loaded = load_data(data, dataset, _seed(values, seed))
    _train_epochs("dynamic_architecture", "ArchitectureSearchConfig", values, loaded,
                  register_as, resume_from, total=checked.n_candidates * checked.epochs)


@app.command()
def online(
    data: DataOption = None,
    dataset: DatasetOption = None,
    config: ConfigOption = None,
    register_as: RegisterOption = None,
    seed: SeedOption = None,
    resume_from: ResumeOption = None,
) -> None:
    """Stream a log through the online learner (experiment online_learning), one run."""
    import math

    from agentnn.errors import TrainerConfigError
    from agentnn.nn_models import online_learning
    from agentnn.nn_models.common import check_config

    values = merge_options(read_config_file(config), online_learning.OnlineConfig, seed=seed)
    checked = check_config(values, online_learning.OnlineConfig)
    if (data is None) == (dataset is None):
        raise TrainerConfigError("give exactly one of --data <logs.jsonl> or --dataset synthetic")
    if dataset is not None and dataset != "synthetic":
        raise TrainerConfigError(
            f"the online learner streams interaction records; --dataset {dataset!r} has none "
            "(use --dataset synthetic or --data logs.jsonl)"
        )
    if data is not None:
        source: Any = data
        from agentnn.data import load_interactions

        n_records = len(load_interactions(data))
    else:
        from agentnn.data import synthesize_interactions

        source = synthesize_interactions(SYNTHETIC_RECORDS, SYNTHETIC_AGENTS,
                                         seed=_seed(values, seed))
        n_records = len(source)
    total = math.ceil(n_records / checked.batch_size)
    result = run_with_progress(online_learning, values, source, total=total,
                               register_as=register_as, resume_from=resume_from)
    print_result(result)


@app.command()
def distributed(
    data: DataOption = None,
    dataset: DatasetOption = None,
    epochs: EpochsOption = None,
    config: ConfigOption = None,
    register_as: RegisterOption = None,
    seed: SeedOption = None,
    resume_from: ResumeOption = None,
    nproc: Annotated[int, typer.Option("--nproc", min=1,
                                       help="Processes torchrun starts on this machine.")] = 2,
) -> None:
    """Data-parallel training under torchrun (experiment distributed_training), one run."""
    import tempfile

    from agentnn.errors import TrainerConfigError
    from agentnn.nn_models import training_infrastructure as ti

    values = merge_options(read_config_file(config), ti.DistributedConfig, epochs=epochs,
                           seed=seed)
    if dataset is not None and dataset not in DATASETS:
        raise TrainerConfigError(f"--dataset must be one of {', '.join(DATASETS)}; got {dataset!r}")
    stderr = console.stderr()
    with tempfile.TemporaryDirectory(prefix="agentnn-synthetic-") as tmp:
        if dataset == "synthetic":  # every torchrun process loads the data itself: from a file
            from agentnn.data import synthesize_interactions, write_interactions

            data = write_interactions(
                synthesize_interactions(SYNTHETIC_RECORDS, SYNTHETIC_AGENTS,
                                        seed=_seed(values, seed)),
                Path(tmp) / "synthetic.jsonl",
            )
            dataset = None
        stderr.print(f"launching torchrun with {nproc} processes…")
        result = ti.launch(nproc, values, data=data, dataset=dataset, register_as=register_as,
                           resume_from=resume_from)
    print_result(result)
