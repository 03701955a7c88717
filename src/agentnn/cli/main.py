"""The `agentnn` command: one sub-app per noun, composed here.

Heavy imports (MLflow, PyTorch) happen inside command bodies, so ``--help`` stays fast.
Every :class:`~agentnn.errors.AgentNNError` becomes one line on stderr and exit code 1
(``--debug`` shows the traceback); usage errors exit 2, as Click does; Ctrl-C exits 130.
The global options (``--debug``, ``-v/--verbose``, ``--tracking-uri``) work before or after
the sub-command (:mod:`agentnn.cli.grammar`); the libraries underneath stay quiet unless ``-v``
(:mod:`agentnn.cli.verbosity`).
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

try:  # Typer 0.2x carries its own copy of Click, whose context and usage errors these are
    from typer._click.core import Context
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older Typer uses Click itself
    # ignored for mypy, which reads the installed Typer: these names shadow its copy of Click
    from click.core import Context  # type: ignore[assignment]
    from click.exceptions import NoArgsIsHelpError, UsageError  # type: ignore[assignment]

from agentnn import config
from agentnn.cli import console, grammar, verbosity
from agentnn.cli.config_cmd import show_config
from agentnn.cli.data import app as data_app
from agentnn.cli.model import app as model_app
from agentnn.cli.train import app as train_app

DEBUG_VARIABLE = "AGENTNN_DEBUG"
EXIT_USER_ERROR = 1
EXIT_USAGE_ERROR = 2  # as Click's own
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


class ErrorsAsOneLine(TyperGroup):
    """Turns agentnn's own errors into one line and exit code 1, and a usage error (a bad option
    value, an unknown command, a run filter the store cannot parse) into one line and exit code
    2: the one place that does so."""

    def invoke(self, ctx: Context) -> Any:  # Any: whatever the command returns, as in Click
        from agentnn.errors import AgentNNError, InvalidQueryError

        try:
            return super().invoke(ctx)
        except InvalidQueryError as error:  # a --filter or --order-by: what was typed
            if os.environ.get(DEBUG_VARIABLE):
                raise
            console.error_line(str(error))
            raise typer.Exit(EXIT_USAGE_ERROR) from None
        except AgentNNError as error:
            if os.environ.get(DEBUG_VARIABLE):
                raise
            console.error_line(str(error))
            raise typer.Exit(EXIT_USER_ERROR) from None
        except NoArgsIsHelpError:
            raise
        except UsageError as error:
            if os.environ.get(DEBUG_VARIABLE):
                raise
            hint = f" (see '{error.ctx.command_path} --help')" if error.ctx else ""
            console.error_line(error.format_message() + hint)
            raise typer.Exit(EXIT_USAGE_ERROR) from None
        except KeyboardInterrupt as interrupt:
            console.error_line(_interrupted_line(interrupt))
            raise typer.Exit(EXIT_INTERRUPTED) from None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Every command's help, wherever the app is built (the docs' command reference too)
        grammar.tidy_help(self)

    def main(self, args: Sequence[str] | None = None, *rest: Any, **extra: Any) -> Any:
        """Click's entry point, after moving the global options to the front (see
        :mod:`agentnn.cli.grammar`)."""
        given = list(sys.argv[1:] if args is None else args)
        return super().main(grammar.global_options_first(self, given), *rest, **extra)


app = typer.Typer(
    cls=ErrorsAsOneLine,
    help="Train the networks of an agent-routing system and track everything in MLflow.\n\n"
         "The options below work before or after the command: agentnn train advanced -v.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks instead of one-line errors.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", envvar=config.AGENTNN_VERBOSE,
                           help="Also show what MLflow, Optuna and the UI server say (their "
                           "INFO lines, download bars, access log).")
    ] = False,
    tracking_uri: Annotated[
        str | None, typer.Option("--tracking-uri", help="Store for this command; default: "
                                 "MLFLOW_TRACKING_URI, .env, then ./mlruns.",
                                 show_default=False)
    ] = None,
) -> None:
    if debug:  # for this command only (a test runs many in one process)
        ctx.call_on_close(lambda before=os.environ.get(DEBUG_VARIABLE):
                          _restore(DEBUG_VARIABLE, before))
        os.environ[DEBUG_VARIABLE] = "1"
    console.show_diagnostics(debug=bool(os.environ.get(DEBUG_VARIABLE)))
    verbosity.apply(verbose)
    if tracking_uri is not None:  # for this command only: put back when it ends
        before = os.environ.get(config.MLFLOW_TRACKING_URI)
        os.environ[config.MLFLOW_TRACKING_URI] = tracking_uri
        ctx.call_on_close(lambda: _restore(config.MLFLOW_TRACKING_URI, before))


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@app.command()
def quickstart(
    epochs: Annotated[int, typer.Option(help="Training epochs.", min=1)] = 5,
    seed: Annotated[int, typer.Option(help="Seed for data, weights and batches.")] = 0,
) -> None:
    """Train a small routing model on synthetic data and track it on the resolved store."""
    from agentnn.quickstart import CHAMPION_METRIC, HEADLINE_METRIC, run_quickstart

    def report(epoch: int, metrics: dict[str, float]) -> None:
        console.message(f"epoch {epoch}/{epochs}  val_loss {metrics['val_loss']:.4f}  "
                        f"{HEADLINE_METRIC} {metrics[HEADLINE_METRIC]:.3f}")

    result = run_quickstart(epochs=epochs, seed=seed, on_epoch=report)
    version = result["registered_version"]
    for line in (
        f"run id:        {result['run_id']}",
        f"experiment:    {result['experiment']} ({result['experiment_id']})",
        f"best {HEADLINE_METRIC}:  {result['best_val_accuracy']:.3f} "
        f"(epoch {result['best_epoch']})",
        f"registered:    {result['registered_model']} version {version}, "
        + (f"alias @{result['alias']} -> {version}" if result["promoted"] else
           f"@{result['alias']} stays on version {result['champion_version']} "
           f"({CHAMPION_METRIC} as good or better)"),
        f"open the UI:   mlflow ui --backend-store-uri {result['tracking_uri']}",
    ):
        console.message(line)


app.command("config")(show_config)
app.add_typer(model_app, name="model")
app.add_typer(train_app, name="train")
app.add_typer(data_app, name="data")


def _interrupted_line(interrupt: KeyboardInterrupt) -> str:
    """What a user needs after Ctrl-C: for a training, its run, checkpoint and the command that
    goes on from there (the same command, resuming from the checkpoint)."""
    from agentnn.errors import TrainingInterrupted

    if not isinstance(interrupt, TrainingInterrupted):
        return "interrupted"
    if interrupt.checkpoint is None:
        return f"interrupted: run {interrupt.run_id} (KILLED) finished no epoch to resume from"
    args, skip = [], False
    for arg in sys.argv[1:]:  # the same command, without an earlier --resume-from
        if skip:
            skip = False
        elif arg == "--resume-from":
            skip = True
        elif not arg.startswith("--resume-from="):
            args.append(arg)
    command = shlex.join(["agentnn", *args, "--resume-from", str(interrupt.checkpoint)])
    return (f"interrupted after epoch {interrupt.epoch}: run {interrupt.run_id} (KILLED), "
            f"checkpoint {interrupt.checkpoint}; go on with: {command}")


def _interrupt_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # the same path as Ctrl-C: the work is kept, then the process ends


def main() -> None:
    """Console-script entry point. SIGTERM (a scheduler, ``kill``) ends a command as Ctrl-C
    does, so a training keeps its last finished epoch either way."""
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    sys.exit(app())
