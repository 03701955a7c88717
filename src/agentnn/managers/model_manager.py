"""Runtime model loading for Agent-NN, where every load is a tracked run.

A service that routes tasks loads its model here. Each load becomes a run in the experiment
``model_management`` recording what was asked for, what it resolved to and how it went, so
"which model answered on Tuesday, and was it the one we promoted?" has an answer::

    manager = ModelManager()
    router = manager.load("agent-router@champion")         # torch.nn.Module in eval mode
    manager.route(["Summarise the Q3 balance sheet"], model="agent-router@champion")
    # [RouteDecision(task=..., agent="finance", score=0.93, scores={...})]
    manager.close()                                        # the call counts reach the load's run

``route()`` loads a URI once per manager (one run) and serves every later call from memory: a
call costs the forward pass, no store round trip. How often the model was used (``calls``,
``tasks``) is logged to its load's run at :meth:`ModelManager.close` and at exit.

Loading goes through the one loader (:mod:`agentnn.mlflow_integration.models.loading`), so the
disk and memory caches, the sha256 check and the ``trust`` rule are the same as the SDK's.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentnn.errors import AgentNNError, InputError, ModelError

if TYPE_CHECKING:
    import torch

    from agentnn.mlflow_integration import ExperimentTracker
    from agentnn.mlflow_integration.models.loading import LoadedModel, ModelLoader

logger = logging.getLogger(__name__)

LOAD_EXPERIMENT = "model_management"  # the experiment every load is recorded in
DEFAULT_ROUTER = "agent-router@champion"
ROUTE_OUTPUT_KEYS = ("agent_logits", "logits", "agent")  # dict outputs holding per-agent logits
CALLS_METRIC = "calls"  # route() calls a loaded model served, logged on its load's run
TASKS_METRIC = "tasks"  # task descriptions those calls routed


@dataclass
class _Usage:
    """How often one loaded model was used since its load, and what its run has been told."""

    run_id: str
    calls: int = 0
    tasks: int = 0
    logged_calls: int = 0


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
        self._served: dict[tuple[str, bool], LoadedModel] = {}  # route()'s models, by URI
        self._usage: dict[int, _Usage] = {}  # id(LoadedModel) -> its load run's counts
        self._kept: list[LoadedModel] = []  # keeps the ids in _usage unique
        self._usage_lock = threading.Lock()
        self._at_exit = False

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
        with self._usage_lock:
            self._usage[id(loaded)] = _Usage(run.run_id)
            self._kept.append(loaded)
            if not self._at_exit:  # registered after the writer's own hook, so it runs first
                atexit.register(self._log_usage, False)
                self._at_exit = True
        return loaded

    def close(self) -> None:
        """Log each loaded model's use (``calls``, ``tasks``) to its load's run and wait until
        the store has it. Also done at exit, without waiting; safe to call more than once."""
        self._log_usage(True)

    def __enter__(self) -> ModelManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _log_usage(self, wait: bool) -> None:
        """The counts that changed since last told, as metrics of the load runs (step =
        calls), through the journal: no run is reopened."""
        with self._usage_lock:
            changed = [usage for usage in self._usage.values()
                       if usage.calls != usage.logged_calls]
            for usage in changed:
                usage.logged_calls = usage.calls
            counts = [(usage.run_id, usage.calls, usage.tasks) for usage in changed]
        for run_id, calls, tasks in counts:
            try:
                self.tracker.log_to_ended_run(
                    run_id, {CALLS_METRIC: calls, TASKS_METRIC: tasks}, step=calls, wait=wait)
            except (AgentNNError, OSError) as error:
                if wait:
                    raise
                # at exit nothing may raise; the journal folder or the store may be gone
                logger.warning("the use of model run %s is not logged: %s", run_id, error)

    def _serve(self, uri: str, trust: bool) -> LoadedModel:
        """The model ``uri`` names, loaded (one tracked run) on its first use only."""
        loaded = self._served.get((uri, trust))
        if loaded is None:
            loaded = self.load_model(uri, trust=trust)
            self._served[(uri, trust)] = loaded
        return loaded

    def _count(self, loaded: LoadedModel, tasks: int) -> None:
        usage = self._usage.get(id(loaded))
        if usage is not None:
            with self._usage_lock:
                usage.calls += 1
                usage.tasks += tasks

    def route(
        self, tasks: Sequence[str], model: str | LoadedModel = DEFAULT_ROUTER, trust: bool = False
    ) -> list[RouteDecision]:
        """The best agent, and every agent's probability, for each task description.

        ``model`` is a URI or a model already loaded. A URI is loaded (and so tracked, through
        :meth:`load_model`) on its first call only; later calls use the model in memory, so an
        alias moved since is seen by a new manager. Each call is counted on the load's run
        (see :meth:`close`). Its metadata must describe routing (``agents``, ``featurizer``,
        ``route_input``), as the trainers store it.
        """
        import torch

        from agentnn.data import build_route_inputs

        if isinstance(tasks, str):
            raise InputError("route() takes a list of task descriptions, not one string")
        loaded = self._serve(model, trust) if isinstance(model, str) else model
        agents = list(loaded.metadata.get("agents") or [])
        if not agents:
            raise ModelError(
                f"{loaded.source} is not a routing model: its metadata names no agents"
            )
        self._count(loaded, len(tasks))
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
