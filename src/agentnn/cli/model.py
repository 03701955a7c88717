"""`agentnn model …`: experiments, runs, the registry and loading.

Each command parses its options, asks :class:`agentnn.sdk.nn_models.ModelManager` one
question and renders the answer through :mod:`agentnn.cli.console`. The SDK is imported inside
the command bodies, so ``--help`` loads neither MLflow nor PyTorch; on a SQLite store the
listing commands never import MLflow at all.

``--output json`` prints the ``to_dict()`` of the SDK's records (documented in the README):
stable keys, ISO 8601 UTC times, durations in seconds, ``null`` for what a run never recorded,
and NaN as the string ``"nan"``.
"""

from __future__ import annotations

import enum
import signal
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agentnn.cli import console
from agentnn.cli.sync_cmd import sync

if TYPE_CHECKING:
    from agentnn.sdk.nn_models import ModelManager, RunInfo

app = typer.Typer(help="List experiments, inspect and compare runs, register, promote, load.",
                  no_args_is_help=True)

KEY_METRICS_SHOWN = 4  # metric columns in the runs table; the rest are in --output json/csv
SHORT_ID = 8  # run id characters a table shows; any unique prefix is accepted as the run id
NAME_WIDTH = 16  # a run or model name keeps this many characters before other columns go
DATASET_WIDTH = 10  # "synthetic" whole; a log file's name may end in an ellipsis
EXPERIMENT_WIDTH = 12  # of an import's target experiment; the column goes first when narrow
WHY_WIDTH = 40  # "http://host:5000 does not answer" whole; the full note is in --output json
SENT_WIDTH = 20  # "1200 points, 3 params" whole; the full counts are in --output json
DEFAULT_LIMIT = 100
DEFAULT_UI_PORT = 5000
UI_LOG = "ui.log"  # the UI server's output, in the journal folder (on the terminal with -v)
DEFAULT_PLOT_FILE = "curves.png"
DEFAULT_PLOT_POINTS = 2000  # per curve; 800 pixels wide, so the shape is all there
DEFAULT_WATCH_INTERVAL = 3.0  # seconds between refreshes of the live view
LOCALHOST = "127.0.0.1"


class Output(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"


TrackingURI = Annotated[
    str | None,
    typer.Option("--tracking-uri", help="Store to read; default: MLFLOW_TRACKING_URI, .env, "
                 "then ./mlruns.", show_default=False),
]
OutputOption = Annotated[Output, typer.Option("--output", "-o", help="table, json or csv.")]
DatasetOption = Annotated[
    str | None,
    typer.Option("--dataset", help="Only runs trained on this data set, e.g. digits or "
                 "synthetic (the agentnn.dataset tag).", show_default=False),
]


def _manager(tracking_uri: str | None) -> ModelManager:
    from agentnn.sdk.nn_models import ModelManager

    return ModelManager(tracking_uri)


# --- formatting helpers --------------------------------------------------------------------


def _time(millis: int | None, short: bool = False) -> str:
    """Local time for tables; ``short`` drops the year and seconds to leave room for metrics."""
    if millis is None:
        return ""
    return datetime.fromtimestamp(millis / 1000).strftime(
        "%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _key_metrics(runs: list[RunInfo], first: str | None = None) -> list[str]:
    """The metric columns worth a place in a table: the one asked about, then what the runs'
    trainers report as their objective (see :mod:`agentnn.sdk._key_metrics`)."""
    from agentnn.sdk.nn_models import key_metrics

    return key_metrics(runs, first)[:KEY_METRICS_SHOWN]


def _short(run_id: str | None) -> str:
    return (run_id or "")[:SHORT_ID]


def _metric_from_order(order_by: str | None) -> str | None:
    if not order_by or not order_by.lower().startswith(("metrics.", "metric.")):
        return None
    key = order_by.split(".", 1)[1].rsplit(" ", 1)
    name = key[0] if len(key) == 2 and key[1].upper() in ("ASC", "DESC") else " ".join(key)
    return name.strip().strip("`\"")


def _print_runs(title: str, runs: list[RunInfo], output: Output, metric: str | None) -> None:
    if output is Output.json:
        console.print_json([run.to_dict() for run in runs])
        return
    if output is Output.csv:
        metric_keys = sorted({key for run in runs for key in run.metrics})
        param_keys = sorted({key for run in runs for key in run.params})
        columns = ["run_id", "run_name", "experiment_id", "status", "start_time", "end_time",
                   "duration_s", "parent_run_id"]
        columns += [f"metrics.{key}" for key in metric_keys]
        columns += [f"params.{key}" for key in param_keys]
        rows = []
        for run in runs:
            data = run.to_dict()
            rows.append([data[column] for column in columns[:8]]
                        + [run.metrics.get(key) for key in metric_keys]
                        + [run.params.get(key) for key in param_keys])
        console.print_table(title, columns, rows, output="csv")
        return
    metric_keys = _key_metrics(runs, metric)
    columns = ["run id", "name", "dataset", "status", "started", "duration", *metric_keys]
    rows = [
        [_short(run.run_id), run.run_name, run.dataset, run.status,
         _time(run.start_time_ms, short=True), _duration(run.duration_s),
         *[run.metrics.get(key) for key in metric_keys]]
        for run in runs
    ]
    # On a narrow terminal the later metrics go first, then duration and start time.
    console.print_table(title, columns, rows,
                        no_wrap=["run id", "status", "started", "duration", *metric_keys],
                        truncate={"name": NAME_WIDTH, "dataset": DATASET_WIDTH},
                        optional=[*metric_keys[:0:-1], "duration", "started"])


# --- experiments and runs ------------------------------------------------------------------


@app.command()
def experiments(
    all_: Annotated[bool, typer.Option("--all", help="Include deleted experiments.")] = False,
    output: OutputOption = Output.table,
    tracking_uri: TrackingURI = None,
) -> None:
    """The experiments: name, id, run count and when the last run started."""
    found = _manager(tracking_uri).list_experiments(include_deleted=all_)
    rows = [
        [e.name, e.experiment_id, e.run_count, _time(e.last_run_ms), e.lifecycle_stage]
        for e in found
    ]
    console.print_table("experiments", ["name", "id", "runs", "last run", "state"], rows,
                        output=output.value, records=[e.to_dict() for e in found],
                        truncate={"name": NAME_WIDTH}, optional=["state"])


@app.command()
def runs(
    experiment: Annotated[
        str | None, typer.Argument(help="Experiment name or id; all experiments when left out.")
    ] = None,
    filter_: Annotated[
        str | None, typer.Option("--filter", help="MLflow search filter, e.g. "
                                 "\"params.lr = '0.001' and metrics.acc > 0.9\".")
    ] = None,
    order_by: Annotated[
        str | None, typer.Option("--order-by", help="e.g. 'metrics.val_loss ASC'; newest first "
                                 "by default.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=0, help="At most this many runs; 0 lists them all.")
    ] = DEFAULT_LIMIT,
    deleted: Annotated[bool, typer.Option("--deleted", help="Include deleted runs.")] = False,
    pending: Annotated[
        bool, typer.Option("--pending", help="Only runs kept in ./mlruns while their server did "
                           "not answer, not pushed there yet.")
    ] = False,
    dataset: DatasetOption = None,
    output: OutputOption = Output.table,
    tracking_uri: TrackingURI = None,
) -> None:
    """Runs with their data set, status and the metrics their trainer reports first."""
    if pending:
        waiting = _manager(tracking_uri).pending_runs()
        if output is not Output.table:
            _print_runs("runs not pushed yet", waiting, output, None)
            return
        rows = [[_short(run.run_id), run.run_name, _time(run.start_time_ms, short=True),
                 run.push_note or "waiting for its server"] for run in waiting]
        console.print_table("runs not pushed yet", ["run id", "name", "started", "why"], rows,
                            no_wrap=["run id"], truncate={"name": NAME_WIDTH, "why": WHY_WIDTH},
                            optional=["started"])
        return
    found = _manager(tracking_uri).list_runs(
        experiment, filter=filter_, order_by=order_by, limit=limit or None,
        include_deleted=deleted, dataset=dataset,
    )
    _print_runs(f"runs of {experiment}" if experiment else "runs", found, output,
                _metric_from_order(order_by))


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    output: OutputOption = Output.table,
    tracking_uri: TrackingURI = None,
) -> None:
    """Everything about one run: status, times, params, metrics, tags, artifacts, family."""
    detail = _manager(tracking_uri).get_run(run_id)
    if output is Output.json:
        console.print_json(detail.to_dict())
        return
    run = detail.run
    sections: list[tuple[str, list[list[Any]]]] = [
        ("run", [
            ["id", run.run_id], ["name", run.run_name], ["experiment",
                                                        f"{detail.experiment_name} "
                                                        f"({run.experiment_id})"],
            ["status", run.status], ["state", run.lifecycle_stage],
            ["started", _time(run.start_time_ms)], ["ended", _time(run.end_time_ms)],
            ["duration", _duration(run.duration_s)], ["parent", run.parent_run_id],
            ["children", ", ".join(detail.child_run_ids)],
            ["logged models", ", ".join(detail.logged_model_ids)],
            ["artifact uri", detail.artifact_uri],
        ]),
        ("params", [[key, value] for key, value in sorted(run.params.items())]),
        ("metrics (latest)", [[key, value] for key, value in sorted(run.metrics.items())]),
        ("tags", [[key, value] for key, value in sorted(run.tags.items())]),
        ("artifacts", [[path, ""] for path in detail.artifacts]),
    ]
    if output is Output.csv:
        rows = [[section, *row] for section, section_rows in sections for row in section_rows]
        console.print_table(None, ["section", "key", "value"], rows, output="csv")
        return
    for title, rows in sections:
        if rows:
            console.print_table(title, ["key", "value"], rows)


@app.command()
def best(
    experiment: Annotated[str, typer.Argument(help="Experiment name or id.")],
    metric: Annotated[str, typer.Option("--metric", help="Metric to rank finished runs by.")],
    maximize: Annotated[
        bool, typer.Option("--max", help="Highest value wins (default: lowest).")
    ] = False,
    dataset: DatasetOption = None,
    output: OutputOption = Output.table,
    tracking_uri: TrackingURI = None,
) -> None:
    """The best finished run of an experiment by one metric."""
    from agentnn.errors import NotFoundError

    found = _manager(tracking_uri).best_run(experiment, metric, mode="max" if maximize else "min",
                                            dataset=dataset)
    if found is None:
        raise NotFoundError("finished run with metric", metric,
                            f"no finished run of {experiment!r} logged it as a number")
    _print_runs(f"best run of {experiment} by {metric}", [found], output, metric)


@app.command()
def compare(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.")],
    output: OutputOption = Output.table,
    tracking_uri: TrackingURI = None,
) -> None:
    """Params and final metrics side by side; differing values highlighted."""
    if len(run_ids) < 2:
        raise typer.BadParameter("give at least two run ids", param_hint="RUN_IDS")
    comparison = _manager(tracking_uri).compare_runs(run_ids)
    if output is Output.json:
        console.print_json(comparison.to_dict())
        return
    labels = [_short(run.run_id) for run in comparison.runs]
    rows: list[list[Any]] = [["name", *[run.run_name for run in comparison.runs], ""],
                             ["dataset", *[run.dataset for run in comparison.runs], ""]]
    styles: list[str | None] = [None, None]
    if output is Output.csv:
        rows, styles = [], []
    for kind, values, differing in (
        ("params", comparison.params, comparison.differing_params),
        ("metrics", comparison.metrics, comparison.differing_metrics),
    ):
        for key, per_run in values.items():
            differs = key in differing
            rows.append([f"{kind}.{key}", *per_run, "yes" if differs else ""])
            styles.append(console.STYLE_CHANGED if differs else None)
    columns = ["key", *labels, "differs"]
    if output is Output.csv:
        columns = ["key", *[run.run_id for run in comparison.runs], "differs"]
    console.print_table("compare", columns, rows, output=output.value, row_styles=styles,
                        no_wrap=["differs"])


@app.command()
def plot(
    run_ids: Annotated[list[str], typer.Argument(help="One or more run ids.")],
    metric: Annotated[str, typer.Option("--metric", help="The metric to draw.")],
    out: Annotated[Path, typer.Option("--out", help="PNG file to write.")] = Path(
        DEFAULT_PLOT_FILE),
    output: Annotated[
        str, typer.Option("--output", "-o", metavar="table|json", help="table prints the "
                          "file written; json prints {\"file\": …}.")
    ] = "table",
    max_points: Annotated[
        int, typer.Option("--max-points", min=0, help="Points per curve, read downsampled "
                          "with each bucket's first, last, min and max kept; 0 draws every "
                          "point.")
    ] = DEFAULT_PLOT_POINTS,
    log_scale: Annotated[bool, typer.Option("--log-scale", help="Log-scale value axis.")] = False,
    smooth: Annotated[
        float, typer.Option("--smooth", min=0.0, max=0.999, help="Exponential moving average "
                            "weight in [0, 1), drawn over the faint raw curve; 0 is off.")
    ] = 0.0,
    tracking_uri: TrackingURI = None,
) -> None:
    """Metric curves of one or more runs, as a PNG."""
    from agentnn.cli.grammar import output_or_old_file

    output, old_file = output_or_old_file(output, ("table", "json"), "--out {file}")
    written = _manager(tracking_uri).plot_metric(
        run_ids, metric, old_file or out, max_points=max_points or None, log_scale=log_scale,
        smooth=smooth,
    )
    if output == "json":
        console.print_json({"file": str(written)})
    else:
        console.message(f"wrote {written}")


class WatchOutput(str, enum.Enum):
    table = "table"
    json = "json"


@app.command()
def watch(
    target: Annotated[str, typer.Argument(
        metavar="RUN_ID | EXPERIMENT", help="A run id, or an experiment (name or id) whose "
        "running runs to watch.")],
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot and exit.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.5, help="Seconds between refreshes.")
    ] = DEFAULT_WATCH_INTERVAL,
    output: Annotated[
        WatchOutput, typer.Option("--output", "-o", help="table, or json (one object per "
                                  "refresh, one per line).")
    ] = WatchOutput.table,
    tracking_uri: TrackingURI = None,
) -> None:
    """Live view of a run or an experiment's running runs; exits when they end.

    Per metric: latest value, best value and a sparkline; per run: status, elapsed time and
    steps per second. Points still in the run's local journal show too.
    """
    import time

    manager = _manager(tracking_uri)
    if output is WatchOutput.json:
        while True:
            snapshot = manager.watch(target)
            console.print_json_line(snapshot.to_dict())
            if once or not snapshot.running:
                return
            time.sleep(interval)
    snapshot = manager.watch(target)
    if once or not snapshot.running:
        console.print_renderable(console.watch_view(snapshot))
        return
    if not console.is_terminal():  # a pipe or a log file: the first and the last frame
        console.print_renderable(console.watch_view(snapshot))
        while snapshot.running:
            time.sleep(interval)
            snapshot = manager.watch(target)
        console.print_renderable(console.watch_view(snapshot))
        return
    with console.live() as view:
        while True:
            view.update(console.watch_view(snapshot), refresh=True)
            if not snapshot.running:
                return
            time.sleep(interval)
            snapshot = manager.watch(target)


# --- registry ------------------------------------------------------------------------------


def _print_versions(title: str, versions: list[Any], output: Output) -> None:
    from agentnn.sdk.nn_models import RunInfo, key_metrics

    as_runs = [RunInfo(v.run_id or "", None, "", v.status, None, None, dict(v.run_metrics))
               for v in versions]
    metric_keys = key_metrics(as_runs)[:KEY_METRICS_SHOWN]
    rows = [
        [v.version, ", ".join(v.aliases), _short(v.run_id), _time(v.created_ms, short=True),
         *[v.run_metrics.get(key) for key in metric_keys], v.status, v.source]
        for v in versions
    ]
    console.print_table(
        title, ["version", "aliases", "run id", "created", *metric_keys, "status", "source"],
        rows, output=output.value, records=[v.to_dict() for v in versions],
        no_wrap=["version", "aliases", "run id", "created", *metric_keys, "status"],
        truncate={"source": NAME_WIDTH},
        optional=["source", *metric_keys[:0:-1], "status"],
    )


@app.command()
def register(
    run_id: Annotated[str, typer.Argument(help="The run whose model to register.")],
    name: Annotated[str, typer.Argument(help="Registered model name; created when new.")],
    alias: Annotated[
        str | None, typer.Option("--alias", help="Also point this alias at the new version.")
    ] = None,
    output: OutputOption = Output.table,
    tracking_uri: TrackingURI = None,
) -> None:
    """Register the run's model as a new version of NAME."""
    version = _manager(tracking_uri).register_model(run_id, name, alias=alias)
    _print_versions(f"registered {name}", [version], output)


@app.command()
def alias(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="Alias, e.g. champion.")],
    version: Annotated[
        int | None, typer.Argument(help="Version the alias should point at.", min=1)
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    tracking_uri: TrackingURI = None,
) -> None:
    """Move ALIAS to VERSION, or remove it with --delete."""
    if delete == (version is not None):
        raise typer.BadParameter("give either VERSION or --delete", param_hint="VERSION")
    manager = _manager(tracking_uri)
    if version is None:  # --delete, as checked above
        manager.delete_alias(name, alias_name)
        console.message(f"removed {name}@{alias_name}")
        return
    manager.set_alias(name, alias_name, version)
    console.message(f"{name}@{alias_name} -> version {version}")


@app.command()
def versions(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    output: OutputOption = Output.table,
    tracking_uri: TrackingURI = None,
) -> None:
    """The versions of a registered model, with aliases and the metrics of their runs."""
    _print_versions(f"versions of {name}", _manager(tracking_uri).list_versions(name), output)


@app.command()
def load(
    uri: Annotated[str, typer.Argument(help="name@alias, name/3, runs:/<id>/model, a model id "
                                       "or a folder.")],
    predict: Annotated[
        Path | None, typer.Option("--predict", exists=True, help="JSON file with inputs: a list "
                                  "of rows, or {\"inputs\": rows}.")
    ] = None,
    trust: Annotated[
        bool, typer.Option("--trust", help="Allow a pickled (non-agentnn) model; unpickling "
                           "runs code from the file, so only for models you trust.")
    ] = False,
    tracking_uri: TrackingURI = None,
) -> None:
    """Load a model, print its signature and, with --predict, its outputs as JSON."""
    console.print_json(_manager(tracking_uri).describe_model(uri, trust=trust, predict=predict))


# --- store ---------------------------------------------------------------------------------


@app.command()
def ui(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to serve on.")] = (
        DEFAULT_UI_PORT),
    host: Annotated[
        str, typer.Option("--host", help="Interface; the default serves this machine only.")
    ] = LOCALHOST,
    tracking_uri: TrackingURI = None,
) -> None:
    """Start the MLflow UI on the resolved store (Ctrl-C or SIGTERM stops it and its workers)."""
    from agentnn.cli import verbosity

    manager = _manager(tracking_uri)
    manager.ui_command(host=host, port=port)  # refuses a server store before printing
    log = None if verbosity.is_verbose() else Path(manager.settings.journal_dir.value) / UI_LOG
    console.message(f"MLflow UI on http://{host}:{port}  (Ctrl-C stops it)"
                    + (f"; its log: {log}" if log else ""))
    code = manager.serve_ui(host=host, port=port, log=log)
    if code not in (0, 128 + signal.SIGINT, 128 + signal.SIGTERM) and log is not None:
        console.error_line(f"the MLflow UI server stopped with exit code {code}; see {log}")
    raise typer.Exit(code)


@app.command()
def migrate(
    path: Annotated[
        Path | None, typer.Argument(exists=True,
                                    help="Legacy file store folder; default ./mlruns.")
    ] = None,
    output: OutputOption = Output.table,
    tracking_uri: TrackingURI = None,
) -> None:
    """Move a legacy MLflow file store into the SQLite store, losing nothing."""
    report = _manager(tracking_uri).migrate(path)
    rows = [[kind, count] for kind, count in report.counts.items()]
    rows.append(["artifact files (kept in place)", report.artifact_files])
    console.print_table(f"migrated {report.source} -> {report.target_uri}", ["moved", "count"],
                        rows, output=output.value, records=report.to_dict())


app.command("sync")(sync)


class ImportOutput(str, enum.Enum):
    table = "table"
    json = "json"


@app.command("import")
def import_runs(
    sources: Annotated[
        list[Path], typer.Argument(exists=True, help="TensorBoard log folders, W&B offline run "
                                   "folders (wandb/offline-run-…) or trackio projects "
                                   "(<project>.db, or the folder holding them).",
                                   show_default=False)
    ],
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="Put every run in this experiment; "
                                 "default: the source's project or folder name.",
                                 show_default=False)
    ] = None,
    output: Annotated[
        ImportOutput, typer.Option("--output", "-o", help="table or json.")
    ] = ImportOutput.table,
    tracking_uri: TrackingURI = None,
) -> None:
    """Bring runs in from W&B, TensorBoard or trackio: params, tags, every metric point, times
    and status; importing the same source again changes nothing."""
    manager = _manager(tracking_uri)
    with console.progress("importing points") as update:
        results = manager.import_runs(list(sources), experiment=experiment, progress=update)
    imported = [r for r in results if r.error is None]
    failed = [r for r in results if r.error is not None]
    if output is ImportOutput.json:
        console.print_json([r.to_dict() for r in results])
    elif imported:
        skips = any(r.skipped for r in imported)  # each skip is also a warning line below
        columns = ["source", "run id", "experiment", "status", "sent",
                   *(["skipped"] if skips else [])]
        rows = [[r.source, _short(r.run_id), r.experiment, r.status, r.summary(),
                 *([len(r.skipped) or ""] if skips else [])] for r in imported]
        console.print_table(f"imported into {manager.store.masked_uri}", columns, rows,
                            no_wrap=["run id", "status", "skipped"],
                            truncate={"source": NAME_WIDTH, "experiment": EXPERIMENT_WIDTH,
                                      "sent": SENT_WIDTH},
                            optional=["experiment"])
        for result in imported:
            for line in result.skipped:
                console.warn_line(f"{result.source}: {line}")
    for result in failed:
        console.error_line(result.error or result.source)
    if failed:
        raise typer.Exit(1)


@app.command()
def push(
    run_ids: Annotated[
        list[str] | None, typer.Argument(help="Runs of the store to copy (with --to).",
                                         show_default=False)
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Store to copy them to: http(s)://host:port, "
                                 "postgresql://… or sqlite:///path.", show_default=False)
    ] = None,
    pending: Annotated[
        bool, typer.Option("--pending", help="Push every run kept in ./mlruns during an outage "
                           "to the store it was meant for.")
    ] = False,
    model: Annotated[
        str | None, typer.Option("--model", help="Copy this registered model whole (with --to): "
                                 "every version and its run, aliases, tags, descriptions.",
                                 show_default=False)
    ] = None,
    create: Annotated[
        bool, typer.Option("--create", help="Create the --to SQLite store when it does not "
                           "exist (otherwise a missing store is refused as a likely typo).")
    ] = False,
    output: OutputOption = Output.table,
    tracking_uri: TrackingURI = None,
) -> None:
    """Copy runs, or a registered model, to another store, whole; an interrupted push resumes,
    a repeated one changes nothing."""
    if [bool(run_ids), pending, model is not None].count(True) != 1:
        raise typer.BadParameter("give RUN_ID... --to URI, --model NAME --to URI, or --pending",
                                 param_hint="RUN_IDS")
    if (run_ids or model is not None) and not to:
        raise typer.BadParameter("name the store to copy to", param_hint="--to")
    manager = _manager(tracking_uri)
    if model is not None:
        _push_model(manager, model, to or "", create, output)
        return
    with console.progress("pushing runs") as update:
        if pending:
            results = manager.push_pending(progress=update)
        else:
            results = manager.push_runs(run_ids or [], to or "", progress=update,
                                        create=create)
    columns = ["run id", "copy", "status", "sent"]
    rows = [[_short(r.source_run_id), _short(r.target_run_id), r.status, r.summary()]
            for r in results]
    if not results and output is Output.table:
        console.message("nothing to push")
        return
    stores = sorted({r.target_uri for r in results})
    console.print_table(f"pushed to {', '.join(stores)}", columns, rows, output=output.value,
                        records=[r.to_dict() for r in results],
                        no_wrap=["run id", "copy", "status"], truncate={"sent": SENT_WIDTH})
    if output is Output.table:  # a line each: model names are too long for a column
        for r in results:
            if r.registered or r.aliases:
                console.message(f"{_short(r.target_run_id)}: {_registrations(r)}")


def _registrations(result: Any) -> str:
    """``name/3 @champion``, once per registered model a push created versions or aliases of."""
    names = {entry.split("/", 1)[0] for entry in result.registered}
    names |= {entry.rsplit("@", 1)[0] for entry in result.aliases}
    parts = []
    for name in sorted(names):
        versions = [entry.split("/", 1)[1] for entry in result.registered
                    if entry.split("/", 1)[0] == name]
        aliases = [f"@{entry.rsplit('@', 1)[1]}" for entry in result.aliases
                   if entry.rsplit("@", 1)[0] == name]
        parts.append(" ".join([name + ("/" + ", ".join(versions) if versions else ""),
                               *aliases]))
    return "registered " + "; ".join(parts)


def _push_model(manager: ModelManager, name: str, to: str, create: bool, output: Output) -> None:
    """``push --model``: one row per version, then a line per version not copied (its note)
    and one on the numbers (table only)."""
    with console.progress(f"pushing {name}") as update:
        result = manager.push_model(name, to, progress=update, create=create)
    columns = ["version", "copy", "run", "run copy", "aliases"]
    rows = [[v.source_version, v.target_version or "", _short(v.source_run_id),
             _short(v.target_run_id) + (" (new)" if v.run_created else ""),
             ", ".join(f"@{alias}" for alias in v.aliases)]
            for v in result.versions]
    console.print_table(f"pushed {name} to {result.target_uri}", columns, rows,
                        output=output.value, records=result.to_dict(),
                        no_wrap=["version", "copy", "run", "run copy"],
                        truncate={"aliases": NAME_WIDTH})
    if output is Output.table:
        for v in result.versions:
            if v.note:
                console.warn_line(f"version {v.source_version}: {v.note}")
        console.message(result.numbers if result.changed else
                        f"{result.numbers}; nothing new")
