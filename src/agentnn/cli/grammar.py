"""One grammar for every command: global options anywhere, help that reads as prose.

Two things Click and Typer do on their own that tripped new users:

* A global option works only before the sub-command (``agentnn --debug train …``), while people
  type it last (``agentnn train … --debug``). :func:`global_options_first` moves ``--debug``,
  ``-v/--verbose`` and ``--tracking-uri`` to the front, except that a command declaring
  ``--tracking-uri`` itself (every ``agentnn model`` command) keeps its own.
* Help showed type placeholders (``<bool>`` beside flags, ``<str>``, ``<int range>``) and kept
  the line breaks of docstrings, so sentences broke mid-line. :func:`tidy_help` gives each
  option a name for its value (``--epochs N``, ``--tracking-uri URI``), none for flags, and
  joins each docstring paragraph into one line for the help renderer to wrap; a paragraph
  starting with ``\\b`` keeps its lines, as in Click.
"""

from __future__ import annotations

import enum
import inspect
import warnings
from collections.abc import Sequence
from pathlib import Path

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

from agentnn.errors import AgentNNDeprecationWarning

try:  # Typer 0.2x carries its own copy of Click
    from typer._click.core import Command, Context
    from typer._click.exceptions import UsageError
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - older Typer uses Click itself
    from click.core import Command, Context  # type: ignore[assignment]
    from click.exceptions import UsageError  # type: ignore[assignment]
    from click.globals import get_current_context  # type: ignore[no-redef]

FLAG_OPTIONS = ("--debug", "--verbose", "-v")
"""Global options without a value."""
TRACKING_URI_OPTION = "--tracking-uri"
END_OF_OPTIONS = "--"
NO_WRAP_MARKER = "\b"  # Click's: the paragraph after it keeps its line breaks
OLD_SPELLING_REMOVED_IN = "0.3.0"  # with the renamed config keys (see CHANGELOG.md)

METAVARS = {
    "--tracking-uri": "URI", "--to": "URI", "--storage": "URL",
    "--data": "FILE", "--config": "FILE", "--predict": "FILE", "--out": "FILE",
    "--resume-from": "CHECKPOINT",
    "--register-as": "NAME", "--study": "NAME", "--model": "NAME", "--experiment": "NAME",
    "--metric": "NAME", "--alias": "ALIAS", "--order-by": "ORDER", "--filter": "FILTER",
    "--dataset": "digits|synthetic", "--device": "auto|cpu|cuda|mps",
    "--mode": "multimodal|classifier", "--host": "HOST", "--port": "PORT",
    "--interval": "SECONDS", "--timeout": "SECONDS", "--smooth": "WEIGHT",
}
"""The name shown for an option's value; ints are ``N``, choices list themselves, and any
other option shows its own name in capitals."""


# --- global options anywhere ---------------------------------------------------------------


def global_options_first(root: TyperGroup, args: Sequence[str]) -> list[str]:
    """``args`` with the global options moved before the sub-command, where Click reads them.

    Everything after ``--`` is left as it is. ``--tracking-uri`` stays where it is when the
    command it follows declares the option itself.
    """
    moved: list[str] = []
    rest: list[str] = []
    node: Command = root
    index = 0
    while index < len(args):
        token = args[index]
        if token == END_OF_OPTIONS:
            rest.extend(args[index:])
            break
        if token in FLAG_OPTIONS:
            moved.append(token)
            index += 1
            continue
        if token == TRACKING_URI_OPTION or token.startswith(TRACKING_URI_OPTION + "="):
            taken = [token] if "=" in token else list(args[index:index + 2])
            if node is not root and _declares(node, TRACKING_URI_OPTION):
                rest.extend(taken)
            else:
                moved.extend(taken)
            index += len(taken)
            continue
        if isinstance(node, TyperGroup) and not token.startswith("-"):
            child = node.get_command(Context(node), token)
            if child is not None:
                node = child
        rest.append(token)
        index += 1
    return [*moved, *rest]


def _declares(command: Command, option: str) -> bool:
    return any(option in param.opts for param in command.params)


# --- exit codes ------------------------------------------------------------------------------


def usage_error(message: str) -> UsageError:
    """A refusal of what was typed (a bad option value or combination): exit code 2 and a
    pointer to the command's help, as Click's own usage errors, rather than exit code 1."""
    return UsageError(message, ctx=get_current_context(silent=True))


# --- -o is the output format ---------------------------------------------------------------


def output_or_old_file(value: str, formats: Sequence[str], new_spelling: str
                       ) -> tuple[str, Path | None]:
    """``-o/--output`` as the output format, and the old ``-o FILE`` spelling for one release.

    ``-o`` named a file in ``data synth`` and ``model plot`` and a format everywhere else; it is
    the format everywhere now. A value that is no format but looks like a file (``-o
    curves.png``) is still taken as the file, with a deprecation warning; anything else is a
    usage error. ``new_spelling`` shows the file the new way (``--out {file}``). Returns the
    format and the old-spelling file (None when not used).
    """
    if value in formats:
        return value, None
    if "." in value or "/" in value:
        warnings.warn(f"-o/--output is the output format ({'|'.join(formats)}) now: write "
                      f"{new_spelling.format(file=value)} (-o FILE is removed in "
                      f"{OLD_SPELLING_REMOVED_IN})",
                      AgentNNDeprecationWarning, stacklevel=2)
        return formats[0], Path(value)
    raise typer.BadParameter(f"must be one of {', '.join(formats)}; got {value!r}",
                             param_hint="'-o' / '--output'")


# --- help without placeholders -------------------------------------------------------------


def tidy_help(command: Command) -> None:
    """Give every command below ``command`` prose help and named option values (see module)."""
    if command.help:
        command.help = prose(command.help)
    for param in command.params:
        if isinstance(param, TyperOption) and param.metavar is None:
            param.metavar = _metavar(param)
        elif isinstance(param, TyperArgument):
            # The name column already says what the argument is; no type beside it.
            setattr(param, "display_type_rich", _no_type)  # noqa: B010 - an instance's method
    help_option = command.get_help_option(Context(command))
    if help_option is not None:
        help_option.metavar = ""
    if isinstance(command, TyperGroup):
        for child in command.commands.values():
            tidy_help(child)


def _no_type(ctx: Context) -> None:
    return None


def prose(text: str) -> str:
    """Each paragraph on one line (the renderer wraps it to the terminal); ``\\b`` ones kept."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(
        paragraph if paragraph.startswith(NO_WRAP_MARKER) else " ".join(paragraph.split("\n"))
        for paragraph in paragraphs
    )


def _metavar(option: TyperOption) -> str:
    if option.is_flag or option.count:
        return ""  # a flag takes no value
    long_names = [name for name in option.opts if name.startswith("--")]
    for name in long_names:
        if name in METAVARS:
            return METAVARS[name]
    choices, annotation = _value_type(option)
    if choices:
        return "|".join(_choice(choice) for choice in choices)
    if annotation is int:
        return "N"
    return (long_names[0] if long_names else option.name or "value").lstrip("-").upper()


def _value_type(option: TyperOption) -> tuple[Sequence[object], object]:
    """The option's choices and value type, from what this Typer version records of them."""
    descriptor = getattr(option, "type_descriptor", None)  # Typer 0.2x
    if descriptor is not None:
        return descriptor.choices or (), descriptor.annotation
    kind = getattr(option, "type", None)  # Click's parameter types in older Typer
    choices = getattr(kind, "choices", None)
    if choices:
        return tuple(choices), str
    return (), int if getattr(kind, "name", "") in ("integer", "integer range") else str


def _choice(choice: object) -> str:
    return str(choice.value) if isinstance(choice, enum.Enum) else str(choice)

