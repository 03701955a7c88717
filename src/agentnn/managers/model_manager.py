"""Runtime model loading for Agent-NN, where every load is a tracked run.

A service that routes tasks loads its model here. Each load becomes a run in the experiment
``model_management`` recording what was asked for, what it resolved to and how it went, so
"which model answered on Tuesday, and was it the one we promoted?" has an answer::

    manager = ModelManager()
    router = manager.load("agent-router@champion")         # torch.nn.Module in eval mode
    manager.route(["Summarise the Q3 balance sheet"], model="agent-router@champion")
    # [RouteDecision(task=..., agent="finance", score=0.93, scores={...})]

Loading goes through the one loader (:mod:`agentnn.mlflow_integration.models.loading`), so the
disk and memory caches, the sha256 check and the ``trust`` rule are the same as the SDK's.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentnn.errors import InputError, ModelError

if TYPE_CHECKING:
    import torch

    from agentnn.mlflow_integration import ExperimentTracker
    from agentnn.mlflow_integration.models.loading import LoadedModel, ModelLoader

LOAD_EXPERIMENT = "model_management"  # the experiment every load is recorded in
DEFAULT_ROUTER = "agent-router@champion"
ROUTE_OUTPUT_KEYS = ("agent_logits", "logits", "agent")  # dict outputs holding per-agent logits


@dataclass(frozen=True)
class RouteDecision:
    """The agent a routing model picks for one task, and its probability for every agent."""

    task: str
    agent: str
    score: float
    """Probability of the chosen agent (softmax over the model's agent logits)."""
    scores: dict[str, float]


class ModelManager:
    """The runtime ``ModelManager``: loads models by any URI form for serving, recording each
    load as an MLflow run.

    Not the SDK's :class:`agentnn.sdk.nn_models.ModelManager`, which lists experiments, runs
    and registry versions and registers models; both load through the same
    :class:`~agentnn.mlflow_integration.models.loading.ModelLoader`.

    Args:
        tracking_uri: the store; resolved like every agentnn setting when None.
        device: where modules are placed (``"cpu"``, ``"cuda:0"``).
    """

    def __init__(self, tracking_uri: str | None = None, *, device: str = "cpu") -> None:
        from agentnn.mlflow_integration.models.loading import shared_loader

        self.device = device
        self.loader: ModelLoader = shared_loader(tracking_uri)
        self.tracking_uri = self.loader.tracking_uri
        self._tracker: ExperimentTracker | None = None

    @property
    def tracker(self) -> ExperimentTracker:
        if self._tracker is None:
            from agentnn.mlflow_integration import ExperimentTracker

            # the loader's store: settings resolved once, so the URI keeps its source
            self._tracker = ExperimentTracker(LOAD_EXPERIMENT, store=self.loader.store)
        return self._tracker

    def load(self, uri: str, trust: bool = False) -> torch.nn.Module:
        """The module ``uri`` names, ready and in eval mode; see :meth:`load_model`."""
        return self.load_model(uri, trust=trust).module

    def load_model(self, uri: str, trust: bool = False) -> LoadedModel:
        """Load ``uri`` and record the load as a run in ``model_management``.

        The run's params say what was asked for and what it resolved to (version, run, model
        id, sha256, device, cache hit); its metric ``load_time_s`` says how long it took. A
        failed load leaves a FAILED run, and the error (NotFoundError, ModelIntegrityError,
        UnsafeModelError, …) propagates.
        """
        import mlflow

        nested = mlflow.active_run() is not None  # loading inside a user's run: a child run
        with self.tracker.start_run(
            run_name=f"load {uri}"[:250], params={"source": uri, "device": self.device,
                                                  "trust": trust}, nested=nested,
        ) as run:
            started = time.perf_counter()
            loaded = self.loader.load(uri, trust=trust, device=self.device)
            elapsed = time.perf_counter() - started
            run.log_params(_load_params(loaded))
            run.log_metrics({"load_time_s": elapsed, "cache_hit": float(loaded.cache_hit)})
            run.set_tags({"agentnn.load.cache": loaded.cache})
        return loaded

    def route(
        self, tasks: Sequence[str], model: str | LoadedModel = DEFAULT_ROUTER, trust: bool = False
    ) -> list[RouteDecision]:
        """The best agent, and every agent's probability, for each task description.

        ``model`` is a URI (loaded, and so tracked, through :meth:`load_model`) or a model
        already loaded. Its metadata must describe routing (``agents``, ``featurizer``,
        ``route_input``), as the trainers store it.
        """
        import torch

        from agentnn.data import build_route_inputs

        if isinstance(tasks, str):
            raise InputError("route() takes a list of task descriptions, not one string")
        loaded = self.load_model(model, trust=trust) if isinstance(model, str) else model
        agents = list(loaded.metadata.get("agents") or [])
        if not agents:
            raise ModelError(
                f"{loaded.source} is not a routing model: its metadata names no agents"
            )
        if not tasks:
            return []
        features = build_route_inputs(list(tasks), loaded.metadata)
        parameter = next(loaded.module.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        with torch.no_grad():
            output = loaded.module(torch.as_tensor(features, dtype=torch.float32, device=device))
        logits = _agent_logits(output, loaded.metadata, loaded.source)
        if logits.shape != (len(tasks), len(agents)):
            raise ModelError(
                f"{loaded.source} returned logits of shape {tuple(logits.shape)}; expected "
                f"({len(tasks)}, {len(agents)}) for {len(agents)} agents"
            )
        probabilities = torch.softmax(logits.float(), dim=1).cpu().tolist()
        decisions = []
        for task, row in zip(tasks, probabilities):
            best = max(range(len(agents)), key=row.__getitem__)
            decisions.append(RouteDecision(
                task=task, agent=agents[best], score=row[best],
                scores=dict(zip(agents, row)),
            ))
        return decisions


def _agent_logits(output: object, metadata: Mapping[str, Any], source: str) -> torch.Tensor:
    """The per-agent logits of a forward pass: the tensor itself, or the right dict entry."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        keys = [metadata["route_output"]] if metadata.get("route_output") else ROUTE_OUTPUT_KEYS
        for key in keys:
            if key in output:
                logits: torch.Tensor = output[key]
                return logits
        raise ModelError(
            f"{source} returns outputs {sorted(output)}; none holds agent logits "
            f"(looked for {', '.join(keys)}; set 'route_output' in the model metadata)"
        )
    raise ModelError(f"{source} returned {type(output).__name__}, not agent logits")


def _load_params(loaded: LoadedModel) -> dict[str, Any]:
    """What a load resolved to, as run params; unknown values are left out, not logged empty."""
    params = {
        "resolved_uri": loaded.resolved_uri,
        "model_name": loaded.name,
        "version": loaded.version,
        "alias": loaded.alias,
        "model_run_id": loaded.run_id,
        "model_id": loaded.model_id,
        "sha256": loaded.sha256,
        "safe_format": loaded.safe,
        "cache_hit": loaded.cache_hit,
        "cache": loaded.cache,
    }
    return {key: value for key, value in params.items() if value is not None}
