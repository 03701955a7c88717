"""The registry of builders: the only functions a model file can make agentnn call.

Why it exists: a model in the safe format names the function that rebuilds its module from a
JSON config. Importing whatever a file names would let the file run any code, so a model names
an entry of this registry instead, and agentnn calls only functions registered here, with only
the config keys they declared. Nothing a model file says is ever imported.

Builders come from two places, looked up in this order when a name is not yet known:

1. agentnn itself: the modules listed in :data:`AGENTNN_BUILDER_MODULES`, which register with
   the decorator, and the trainers' builders listed in :data:`AGENTNN_BUILDERS` (both imported
   on first use, so this module stays import-light and trainer modules can import it at no
   cost; a trainer module that decorates its builder under a listed name takes its place);
2. installed packages, through the entry-point group ``agentnn.builders``: the entry point's name
   is the builder's name, its value the module or function that registers it.

Register a builder in your own code::

    from agentnn.mlflow_integration.models.builders import register_builder

    @register_builder("my-router", keys=("n_features", "hidden", "n_outputs"))
    def build_my_router(config: dict) -> torch.nn.Module:
        ...

A builder takes the config dict and returns a fresh module. It must also work under
``torch.device("meta")`` (plain ``torch.nn`` layers do): the loader first builds on the meta
device to compare the shapes with the weights file before anything is allocated.

and, so that models using it load in any process, declare it in your package's
``pyproject.toml``::

    [project.entry-points."agentnn.builders"]
    my-router = "my_package.models:build_my_router"

Models logged before the registry existed name their builder by a dotted path
(``agentnn.nn_models.online_learning:build_model``); :data:`LEGACY_BUILDERS` maps each of
those to its registry name, and any other dotted path is refused.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from agentnn.errors import ModelError, UntrustedBuilderError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint
    from types import ModuleType

BuilderFunction = TypeVar("BuilderFunction", bound="Callable[..., object]")

ENTRY_POINT_GROUP = "agentnn.builders"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")  # "mlp", "my-pkg.router"

# agentnn modules whose import registers builders with @register_builder.
AGENTNN_BUILDER_MODULES: tuple[str, ...] = ("agentnn.managers.builders",)

# The trainers' builders: name -> (module, function, config keys). Listed here rather than
# decorated where they live; a trainer module that registers its builder with the decorator
# under the same name takes precedence.
AGENTNN_BUILDERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "advanced_training": (
        "agentnn.nn_models.advanced_training", "build_model",
        ("kind", "hidden_dim", "dropout", "input_dim", "num_layers", "num_classes",
         "attention_heads", "num_performance", "task_dim", "agent_dim", "feedback_dim"),
    ),
    "dynamic_architecture": (
        "agentnn.nn_models.dynamic_architecture", "build_model",
        ("n_features", "hidden_sizes", "n_classes", "activation", "dropout", "layout"),
    ),
    "multi_task_learning": (
        "agentnn.nn_models.multi_task_learning", "build_model",
        ("tasks", "input_dim", "num_agents", "hidden_dims", "head_hidden_dim", "dropout",
         "outputs"),
    ),
    "online_learning": (
        "agentnn.nn_models.online_learning", "build_model",
        ("n_features", "n_agents", "hidden_sizes", "dropout"),
    ),
    "training_infrastructure": (
        "agentnn.nn_models.training_infrastructure", "build_model",
        ("n_features", "hidden_sizes", "n_classes", "dropout"),
    ),
}

# Dotted builder paths that models logged before the registry hold in spec.json.
LEGACY_BUILDERS: dict[str, str] = {
    "agentnn.managers.builders:build_mlp": "mlp",
    **{f"{module}:{function}": name
       for name, (module, function, _keys) in AGENTNN_BUILDERS.items()},
}


@dataclass(frozen=True)
class Builder:
    """One registered builder: the function and the config keys it may be handed."""

    name: str
    function: Callable[[dict[str, Any]], object]
    """Takes the JSON config; what it returns is checked to be a ``torch.nn.Module``."""
    keys: frozenset[str]
    """Every config key the builder takes; a config with any other key is refused."""
    origin: str
    """Where it was registered: the function's module."""
    listed: bool = False
    """True when it came from :data:`AGENTNN_BUILDERS`; a decorator may take its place."""


_REGISTRY: dict[str, Builder] = {}
_LOCK = threading.RLock()


def register_builder(
    name: str, *, keys: Iterable[str]
) -> Callable[[BuilderFunction], BuilderFunction]:
    """Decorator: make ``function`` loadable as builder ``name`` taking config ``keys``.

    Registering the same function again is harmless (a module imported twice); registering
    another function under a taken name is an error, so no package can shadow another's builder.
    """
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ModelError(
            f"builder name {name!r} must be 1-100 letters, digits, '_', '.' or '-'"
        )
    if isinstance(keys, str):
        raise ModelError(f"builder {name!r}: keys must be a list of config keys, not a string")
    declared = frozenset(str(key) for key in keys)

    def decorate(function: BuilderFunction) -> BuilderFunction:
        _add(Builder(name, function, declared, getattr(function, "__module__", "?")))
        return function

    return decorate


def _add(builder: Builder) -> None:
    with _LOCK:
        existing = _REGISTRY.get(builder.name)
        if (existing is not None and existing.function is not builder.function
                and not existing.listed):
            raise ModelError(
                f"builder {builder.name!r} is already registered by {existing.origin}; "
                f"{builder.origin} must pick another name"
            )
        _REGISTRY[builder.name] = builder


def registered_builders() -> dict[str, Builder]:
    """Every builder known so far, agentnn's own and installed packages' included."""
    from importlib.metadata import entry_points

    _import_agentnn_builders()
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name not in _REGISTRY:
            _load_entry_point(entry_point)
    with _LOCK:
        return dict(_REGISTRY)


def canonical_name(builder: object) -> str:
    """The registry name a spec's builder field stands for (a legacy dotted path is mapped)."""
    if not isinstance(builder, str):
        raise UntrustedBuilderError(str(builder)[:100], "a builder name must be a string")
    if builder in LEGACY_BUILDERS:
        return LEGACY_BUILDERS[builder]
    if not NAME_PATTERN.match(builder):
        raise UntrustedBuilderError(
            builder[:100], "not a registered builder name; agentnn never imports a function a "
            "model file names (register one with @register_builder or the 'agentnn.builders' "
            "entry-point group)"
        )
    return builder


def get_builder(builder: object) -> Builder:
    """The registered builder a spec names; UntrustedBuilderError for anything else."""
    name = canonical_name(builder)
    with _LOCK:
        found = _REGISTRY.get(name)
        if found is None:
            _import_agentnn_builders(name)
            found = _REGISTRY.get(name)
        if found is None:
            from importlib.metadata import entry_points

            for entry_point in entry_points(group=ENTRY_POINT_GROUP, name=name):
                _load_entry_point(entry_point)
            found = _REGISTRY.get(name)
    if found is None:
        raise UntrustedBuilderError(
            name, "no builder of that name is registered (agentnn's own are "
            f"{', '.join(sorted(_known_agentnn_names()))}; a package adds its own through the "
            f"{ENTRY_POINT_GROUP!r} entry-point group)"
        )
    return found


def check_config(builder: Builder, config: object) -> dict[str, Any]:
    """The config as a plain dict, after refusing keys the builder did not declare."""
    if not isinstance(config, Mapping):
        raise UntrustedBuilderError(builder.name, f"its config must be a JSON object, got "
                                    f"{type(config).__name__}")
    unknown = sorted(str(key) for key in config if key not in builder.keys)
    if unknown:
        shown = ", ".join(repr(key[:40]) for key in unknown[:5])
        raise UntrustedBuilderError(
            builder.name, f"config keys {shown} are not among the keys it declares "
            f"({', '.join(sorted(builder.keys))})"
        )
    return dict(config)


# --- where builders come from --------------------------------------------------------------


def _known_agentnn_names() -> set[str]:
    return {*AGENTNN_BUILDERS, *(name for name, b in _REGISTRY.items()
                                 if b.origin.startswith("agentnn."))}


def _import_agentnn_builders(name: str | None = None) -> None:
    """Import agentnn's own builder modules (fixed names, never taken from a model file)."""
    for module in AGENTNN_BUILDER_MODULES:
        _import_agentnn(module)
    for listed, (module, function, keys) in AGENTNN_BUILDERS.items():
        if listed in _REGISTRY or (name is not None and listed != name):
            continue
        target = getattr(_import_agentnn(module), function, None)
        if not callable(target):
            raise ModelError(f"builder {listed!r}: {module} has no function {function!r}")
        if listed not in _REGISTRY:  # the module's own decorator may have registered it
            _add(Builder(listed, target, frozenset(keys), module, listed=True))


def _import_agentnn(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as error:  # a missing optional dependency of that module
        raise ModelError(f"agentnn's builder module {module} cannot be imported: {error}") from None


def _load_entry_point(entry_point: EntryPoint) -> None:
    """Import an installed package's builder; the entry point must register its own name."""
    package = entry_point.dist.name if entry_point.dist else "an installed package"
    try:
        loaded = entry_point.load()
    except Exception as error:  # the package's import failed; say which, in one line
        raise ModelError(
            f"builder {entry_point.name!r} from {package} ({entry_point.value}) cannot be "
            f"imported: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        ) from None
    if entry_point.name not in _REGISTRY:
        raise ModelError(
            f"entry point {entry_point.name!r} of {package} ({entry_point.value}) did not "
            f"register a builder of that name; decorate {getattr(loaded, '__name__', 'it')} "
            f"with @register_builder({entry_point.name!r}, keys=...)"
        )
