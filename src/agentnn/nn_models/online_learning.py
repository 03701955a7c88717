"""Continual learning of the router from a stream of interaction records, experiment
``online_learning``.

Why: agents change (a new model behind the legal agent, a tech agent that got worse), and a
router retrained once a month learns it a month late. The online learner updates the router a
little with every batch of new records, replays a sample of older records so it does not forget
what still holds, lowers its learning rate as it settles and raises it again when a drift signal
fires. A learner session is one MLflow run whose step is the update count (never one run per
update); every ``snapshot_every`` updates it writes an atomic checkpoint that ``resume_from``
continues from, in the same run.

What it learns: for a task text, one logit per agent, the chance that agent succeeds. A record
teaches the logit of the agent that handled it (binary cross-entropy on ``success``); routing
picks the agent with the highest logit. Each update is first scored on the new records before
learning from them (prequential evaluation), which is the honest validation of a stream:
``val_loss`` and ``val_acc`` per update come from records the model had not seen.

Drift: the mean prequential loss of the last ``drift_window`` updates against the mean of the
``drift_reference`` updates before them; when it rose by more than ``drift_threshold``
(relative; the ``drift_score`` metric) the ``drift`` metric is 1 for that update's window,
the run gets the tags ``agentnn.drift_detected`` and ``agentnn.last_drift_update`` (the exact
update), and the learning rate returns to its base value.

Metrics are logged every ``log_every_updates`` updates (25 by default, 1 for every update), each
point summing up the updates since the last one (:class:`UpdateWindow`): the prequential loss
and accuracy over all their records, the mean training loss, the latest learning rate. Why not
every update: reading the accuracy and the training loss back from torch and logging ten values
cost about 3% of a small router's update, and a window of a few hundred records is also a less
noisy measure than one batch (Lightning logs every 50 steps by default for the same reasons).

Run example::

    from agentnn.nn_models.online_learning import OnlineConfig, OnlineLearner, train

    result = train(OnlineConfig(batch_size=32), "logs.jsonl")      # streams the file

    with OnlineLearner(OnlineConfig(agents=["finance_agent", "tech_agent"])) as learner:
        for records in incoming_batches():                           # InteractionRecord or dict
            learner.update(records)
        learner.route(["Audit the quarterly tax filing"])             # ["finance_agent"]
    learner.result.model_uri
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias, cast

from agentnn.errors import DataError, TrainerConfigError
from agentnn.nn_models.training.checkpoints import (
    DEFAULT_KEEP_CHECKPOINTS,
    Checkpoint,
    CheckpointManager,
    SavedState,
    check_resume_config,
    checkpoint_dir,
    load_checkpoint,
)
from agentnn.nn_models.training.configs import (
    JSONDict,
    JSONValue,
    check_config,
    check_positive,
    check_range,
    config_dict,
    flatten_config,
    log_data_params,
)
from agentnn.nn_models.training.devices import check_device, resolve_device
from agentnn.nn_models.training.epochs import EpochCallback, seed_everything
from agentnn.nn_models.training.mlp import mlp
from agentnn.nn_models.training.results import TrainResult, log_best_model, open_tracker

if TYPE_CHECKING:
    from types import TracebackType

    import torch

    from agentnn.data import HashingFeaturizer, InteractionRecord
    from agentnn.mlflow_integration import ExperimentTracker, TrackedRun

    Record: TypeAlias = InteractionRecord | Mapping[str, JSONValue]
    """One interaction: a record object, or a dict in the log format."""
    ExcInfo: TypeAlias = tuple[
        type[BaseException] | None, BaseException | None, TracebackType | None
    ]

EXPERIMENT = "online_learning"
BUILDER = "agentnn.nn_models.online_learning:build_model"
DRIFT_TAG = "agentnn.drift_detected"
LAST_DRIFT_TAG = "agentnn.last_drift_update"
DRIFT_COUNT_TAG = "agentnn.drift_count"


@dataclass
class OnlineConfig:
    """Settings of one learner session; every field is logged as a param."""

    # --- routing vocabulary and inputs ------------------------------------------------------
    agents: list[str] = field(default_factory=list)
    """Agent names, one logit each; ``train()`` reads them from the log when empty."""
    featurizer_dim: int = 256  # hashing buckets of the task text
    featurizer_ngram: int = 2
    # --- model ------------------------------------------------------------------------------
    hidden_dims: list[int] = field(default_factory=lambda: [64])
    dropout: float = 0.0  # 0..0.9
    # --- updates ----------------------------------------------------------------------------
    batch_size: int = 32  # records per update when train() streams a file
    updates_per_batch: int = 1  # gradient steps on each batch (new records plus replay)
    replay_capacity: int = 2000  # records the reservoir keeps
    replay_ratio: float = 1.0  # replayed records per new record in an update
    learning_rate: float = 0.01  # base learning rate (Adam); where it returns after a drift
    lr_decay: float = 0.995  # per update since the last drift
    min_learning_rate: float = 5e-4  # the decay stops here
    # --- drift ------------------------------------------------------------------------------
    drift_window: int = 5  # recent updates whose mean prequential loss is watched
    drift_reference: int = 20  # updates before those: the level it is compared with
    drift_threshold: float = 0.2  # relative rise of the prequential loss that fires drift
    # --- snapshots and reproducibility -------------------------------------------------------
    log_every_updates: int = 25  # metrics logged per window of this many updates (1: each)
    snapshot_every: int = 1000  # updates between checkpoints (each writes the whole reservoir)
    keep_checkpoints: int = DEFAULT_KEEP_CHECKPOINTS
    checkpoint_dir: str | None = None  # default ./checkpoints/online_learning/<run id>
    seed: int = 0
    device: str = "auto"  # auto (CUDA when present), cpu, cuda or mps

    def validate(self) -> None:
        check_device(self.device)
        if any(not isinstance(name, str) or not name.strip() for name in self.agents):
            raise TrainerConfigError(f"agents must be non-empty names, got {self.agents!r}")
        if len(set(self.agents)) != len(self.agents):
            raise TrainerConfigError(f"agents must not repeat a name, got {self.agents!r}")
        if self.agents and len(self.agents) < 2:
            raise TrainerConfigError("agents must name at least two agents to route between")
        if any(isinstance(w, bool) or not isinstance(w, int) or w <= 0 for w in self.hidden_dims):
            raise TrainerConfigError(
                f"hidden_dims must be positive integers, got {self.hidden_dims!r}"
            )
        for name in ("featurizer_dim", "featurizer_ngram", "batch_size", "updates_per_batch",
                     "replay_capacity", "drift_window", "drift_reference", "log_every_updates",
                     "snapshot_every", "keep_checkpoints"):
            check_positive(name, getattr(self, name))
        check_range("dropout", self.dropout, 0.0, 0.9)
        check_positive("replay_ratio", self.replay_ratio, allow_zero=True)
        check_positive("learning_rate", self.learning_rate)
        check_range("lr_decay", self.lr_decay, 0.5, 1.0)
        check_range("min_learning_rate", self.min_learning_rate, 0.0, self.learning_rate)
        check_positive("drift_threshold", self.drift_threshold)

    def featurizer(self) -> HashingFeaturizer:
        from agentnn.data import HashingFeaturizer

        return HashingFeaturizer(dim=self.featurizer_dim, ngram=self.featurizer_ngram)


def build_model(config: Mapping[str, JSONValue]) -> torch.nn.Sequential:
    """The router MLP: featurised task text in, one success logit per agent out."""
    return mlp(
        int(config["n_features"]),
        [int(width) for width in config["hidden_sizes"]],
        int(config["n_agents"]),
        activation="relu",
        dropout=float(config["dropout"]),
    )


# --- replay buffer -----------------------------------------------------------------------------


class ReplayBuffer:
    """A reservoir of past records (features, agent, success), a uniform sample of the stream.

    Reservoir sampling keeps every record seen so far with equal chance, so old regimes fade
    only as fast as new records arrive. The random draws come from the buffer's own seeded
    generator, whose state travels in checkpoints.

    Why NumPy underneath: the buffer is touched twice on every update with a few dozen rows,
    where a NumPy call costs about a microsecond and a torch call several; the learner pays
    that on every update, so the reservoir keeps its rows in NumPy arrays (on the CPU, whatever
    the model's device) and hands out tensors that share their memory.
    """

    def __init__(self, capacity: int, n_features: int, seed: int) -> None:
        import numpy as np

        self.capacity = capacity
        self.features = np.zeros((capacity, n_features), dtype=np.float32)
        self.agents = np.zeros(capacity, dtype=np.int64)
        self.success = np.zeros(capacity, dtype=np.float32)
        self.size = 0
        self.seen = 0
        self.generator = np.random.default_rng(seed)

    def add(self, features: torch.Tensor, agents: torch.Tensor, success: torch.Tensor) -> None:
        """Offer each record to the reservoir: kept while there is room, then with chance
        ``capacity / records seen``, replacing a random stored one."""
        import numpy as np

        new_features, new_agents, new_success = features.numpy(), agents.numpy(), success.numpy()
        count = len(new_agents)
        room = min(self.capacity - self.size, count)
        if room:  # still filling up: append in one slice
            end = self.size + room
            self.features[self.size:end] = new_features[:room]
            self.agents[self.size:end] = new_agents[:room]
            self.success[self.size:end] = new_success[:room]
            self.size = end
        if room < count:  # record i of the stream replaces slot floor(u * i) when that is a slot
            positions = np.arange(self.seen + room + 1, self.seen + count + 1, dtype=np.float64)
            slots = (self.generator.random(count - room) * positions).astype(np.int64)
            kept = np.flatnonzero(slots < self.capacity)
            if len(kept):  # a later record wins a slot two records drew
                last_first = kept[::-1]
                targets, first = np.unique(slots[last_first], return_index=True)
                rows = last_first[first] + room
                self.features[targets] = new_features[rows]
                self.agents[targets] = new_agents[rows]
                self.success[targets] = new_success[rows]
        self.seen += count

    def sample(self, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``count`` stored records drawn uniformly (with replacement); empty when empty."""
        import torch

        count = min(count, self.size * 4) if self.size else 0
        index = self.generator.integers(0, max(self.size, 1), count)
        return (torch.from_numpy(self.features[index]), torch.from_numpy(self.agents[index]),
                torch.from_numpy(self.success[index]))

    def state_dict(self) -> SavedState:
        import torch

        return {"features": torch.from_numpy(self.features[:self.size].copy()),
                "agents": torch.from_numpy(self.agents[:self.size].copy()),
                "success": torch.from_numpy(self.success[:self.size].copy()), "seen": self.seen,
                "rng": self.generator.bit_generator.state}

    def load_state_dict(self, state: SavedState) -> None:
        import numpy as np

        self.size = int(len(state["agents"]))
        self.features[:self.size] = state["features"].numpy()
        self.agents[:self.size] = state["agents"].numpy()
        self.success[:self.size] = state["success"].numpy()
        self.seen = int(state["seen"])
        if "rng" in state:
            self.generator.bit_generator.state = state["rng"]
        else:  # a checkpoint from before the NumPy reservoir kept a torch generator's state
            self.generator = np.random.default_rng(state["generator"].tolist())


# --- drift signal and learning rate -------------------------------------------------------------


@dataclass
class DriftMonitor:
    """Compares the recent prequential losses with the level of the updates before them.

    After a drift fires it stays quiet for a full reference period, so one change in the
    stream is reported once, not at every update while the model catches up.
    """

    window: int
    reference: int
    threshold: float
    losses: list[float] = field(default_factory=list)
    updates_since_drift: int = 0
    drift_count: int = 0

    def observe(self, loss: float) -> tuple[float, bool]:
        """Record one update's prequential loss; (drift score, whether drift fired now)."""
        span = self.window + self.reference
        self.losses = (self.losses + [loss])[-span:]
        self.updates_since_drift += 1
        if len(self.losses) < span:
            return 0.0, False
        level = sum(self.losses[:self.reference]) / self.reference
        recent = sum(self.losses[self.reference:]) / self.window
        score = (recent - level) / max(level, 1e-8)
        fired = score > self.threshold and self.updates_since_drift >= span
        if fired:
            self.updates_since_drift = 0
            self.drift_count += 1
        return score, fired

    def state_dict(self) -> JSONDict:
        return {"losses": list(self.losses), "updates_since_drift": self.updates_since_drift,
                "drift_count": self.drift_count}

    def load_state_dict(self, state: Mapping[str, JSONValue]) -> None:
        self.losses = [float(value) for value in state["losses"]]
        self.updates_since_drift = int(state["updates_since_drift"])
        self.drift_count = int(state["drift_count"])


def adaptive_lr(config: OnlineConfig, updates_since_drift: int) -> float:
    """Decays from the base rate with every update and starts over after a drift."""
    return max(config.min_learning_rate,
               config.learning_rate * config.lr_decay ** updates_since_drift)


# --- what is logged ------------------------------------------------------------------------------


class UpdateWindow:
    """The updates since the metrics were last logged, summed up when they are.

    Per update it keeps what the update already has: its metrics (Python floats) and references
    to the scored logits, the outcomes and the training loss (tensors the update made anyway).
    The tensors are read back once per window, in one concatenation, so an update pays for no
    accuracy and no loss read of its own.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.updates = 0
        self.records = 0
        self.val_loss_sum = 0.0  # weighted by records: the window's loss is over its records
        self.seconds = 0.0
        self.samples = 0
        self.drift = 0.0
        self.latest: dict[str, float] = {}
        self.logits: list[torch.Tensor] = []
        self.success: list[torch.Tensor] = []
        self.train_losses: list[torch.Tensor] = []

    def add(self, metrics: dict[str, float], *, samples: int, logits: torch.Tensor,
            success: torch.Tensor, train_loss: torch.Tensor) -> None:
        """One update: its metrics, the samples it trained on, its scored logits and outcomes,
        its last training loss."""
        records = len(success)
        self.updates += 1
        self.records += records
        self.val_loss_sum += metrics["val_loss"] * records
        self.seconds += metrics["update_time_s"]
        self.samples += samples
        self.drift = max(self.drift, metrics["drift"])
        self.latest = metrics
        self.logits.append(logits)
        self.success.append(success)
        self.train_losses.append(train_loss)

    def summary(self) -> dict[str, float]:
        """The window's point: the latest update's ``lr``, ``drift_score``, ``buffer_size`` and
        ``records_seen``; the prequential ``val_loss`` and ``val_acc`` over all the window's
        records; the mean ``train_loss`` and ``update_time_s``; ``drift`` 1 when it fired in the
        window; ``samples_per_s`` over the window."""
        import torch

        logits, success = torch.cat(self.logits), torch.cat(self.success)
        hits = int(((logits > 0) == (success > 0.5)).sum())
        return {
            **self.latest,
            "train_loss": sum(torch.stack(self.train_losses).tolist()) / self.updates,
            "val_loss": self.val_loss_sum / self.records, "val_acc": hits / self.records,
            "drift": self.drift, "update_time_s": self.seconds / self.updates,
            "samples_per_s": self.samples / max(self.seconds, 1e-9),
        }


# --- the learner -------------------------------------------------------------------------------


class OnlineLearner:
    """One learner session: a tracked run, updated batch by batch; use it as a context manager.

    Args:
        config: an :class:`OnlineConfig` (or a mapping); ``agents`` must be set.
        tracker: an ``ExperimentTracker``; default: one on experiment ``online_learning``.
        register_as: register the final model under this name when the session ends.
        resume_from: a checkpoint (file or folder) of an earlier session to continue, in its run.
        data_params: params describing the stream (``dataset_params``), logged at the start.

    Raises:
        TrainerConfigError: a bad config value or checkpoint, before any run is created.
    """

    def __init__(
        self,
        config: OnlineConfig | Mapping[str, JSONValue] | None = None,
        *,
        tracker: ExperimentTracker | None = None,
        register_as: str | None = None,
        resume_from: str | os.PathLike[str] | None = None,
        data_params: Mapping[str, JSONValue] | None = None,
    ) -> None:
        import torch

        self.config = check_config(config, OnlineConfig)
        if not self.config.agents:
            raise TrainerConfigError("config.agents must name the agents to route between")
        self._checkpoint = load_checkpoint(resume_from) if resume_from is not None else None
        if self._checkpoint is not None:
            check_resume_config(self._checkpoint, self.config)
        self._tracker = tracker
        self._register_as = register_as
        self._data_params = dict(data_params or {})
        self.featurizer = self.config.featurizer()
        self.agent_index = {name: index for index, name in enumerate(self.config.agents)}
        seed_everything(self.config.seed)
        self.spec = {"n_features": self.featurizer.dim, "n_agents": len(self.config.agents),
                     "hidden_sizes": list(self.config.hidden_dims),
                     "dropout": self.config.dropout}
        self.device = resolve_device(self.config.device)
        self._on_cpu = self.device.type == "cpu"  # no moves between the reservoir and the model
        self.model = build_model(self.spec).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(),
                                          lr=self.config.learning_rate)
        self.buffer = ReplayBuffer(self.config.replay_capacity, self.featurizer.dim,
                                   self.config.seed)
        self.drift = DriftMonitor(self.config.drift_window, self.config.drift_reference,
                                  self.config.drift_threshold)
        self.updates = 0
        self.records_seen = 0
        self.result: TrainResult | None = None
        self._run: TrackedRun | None = None
        self._saver: CheckpointManager | None = None
        self._last_metrics: dict[str, float] = {}
        self._window = UpdateWindow()
        self._logged_up_to = 0  # a resume does not log again the updates the run already has
        if self._checkpoint is not None:
            self._restore(self._checkpoint)

    # --- session ----------------------------------------------------------------------------

    def __enter__(self) -> OnlineLearner:
        tracker = open_tracker(self._tracker, EXPERIMENT)
        self._tracker = tracker
        run_id = self._checkpoint.run_id if self._checkpoint is not None else None
        self._run_context = tracker.start_run(run_id=run_id)
        self._run = self._run_context.__enter__()
        self._saver = CheckpointManager(
            checkpoint_dir(self.config.checkpoint_dir, EXPERIMENT, self._run.run_id),
            self.config.keep_checkpoints,
        )
        if self._checkpoint is None:
            params = flatten_config(self.config)
            params["device.requested"] = params.pop("device")
            self._run.log_params({**params, "device": str(self.device)})
            if self._data_params:
                log_data_params(self._run, self._data_params)
        else:  # updates after the last snapshot were logged before the crash: not twice
            history = tracker.client.get_metric_history(self._run.run_id, "val_loss")
            self._logged_up_to = max((metric.step for metric in history), default=0)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> bool | None:
        try:
            self._log_window()  # the updates since the last point, after an error too
            if exc_type is None:
                self._finish()
        except BaseException:
            self._run_context.__exit__(*_current_exception())
            raise
        return self._run_context.__exit__(exc_type, exc, traceback)

    @property
    def run_id(self) -> str:
        """The session's MLflow run id (inside the ``with`` block)."""
        return str(self._require_open().run_id)

    # --- learning ---------------------------------------------------------------------------

    def update(self, records: Iterable[Record]) -> dict[str, float]:
        """Score the new records, then learn from them (plus a replayed sample).

        Returns the update's own values: its prequential ``val_loss``, ``lr``, ``drift_score``,
        ``drift``, ``buffer_size``, ``records_seen``, ``update_time_s`` and ``samples_per_s``.
        The logged points (every ``log_every_updates``) add ``val_acc`` and ``train_loss`` over
        their window; :attr:`logged` holds the latest. ``records`` are
        :class:`~agentnn.data.InteractionRecord` objects or dicts in the log format. Raises
        :class:`DataError` for an invalid record or an agent the learner does not know, before
        the model changes.
        """
        import torch
        import torch.nn.functional as F

        self._require_open()
        features, agents, success = self._encode(list(records))
        started = time.perf_counter()
        val_loss, scored = self._score(features, agents, success)
        score, fired = self.drift.observe(val_loss)
        lr = adaptive_lr(self.config, self.drift.updates_since_drift)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        replay_x, replay_a, replay_s = self.buffer.sample(
            int(round(self.config.replay_ratio * len(agents)))
        )
        if self._on_cpu:  # the reservoir's tensors are on the CPU already
            x, a, s = (torch.cat([features, replay_x]), torch.cat([agents, replay_a]),
                       torch.cat([success, replay_s]))
        else:
            x = torch.cat([features, replay_x.to(self.device)])
            a = torch.cat([agents, replay_a.to(self.device)])
            s = torch.cat([success, replay_s.to(self.device)])
        self.model.train()
        for _ in range(self.config.updates_per_batch):
            logits = self.model(x).gather(1, a.unsqueeze(1)).squeeze(1)
            loss = F.binary_cross_entropy_with_logits(logits, s)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        if self._on_cpu:
            self.buffer.add(features, agents, success)
        else:
            self.buffer.add(features.cpu(), agents.cpu(), success.cpu())
        self.updates += 1
        self.records_seen += len(agents)
        seconds = max(time.perf_counter() - started, 1e-9)
        samples = len(a) * self.config.updates_per_batch
        metrics = {
            "val_loss": val_loss, "lr": lr, "drift_score": score, "drift": 1.0 if fired else 0.0,
            "buffer_size": float(self.buffer.size), "records_seen": float(self.records_seen),
            "update_time_s": seconds, "samples_per_s": samples / seconds,
        }
        self._window.add(metrics, samples=samples, logits=scored, success=success,
                         train_loss=loss.detach())
        if self.updates % self.config.log_every_updates == 0:
            self._log_window()
        if fired:
            self._require_open().set_tags({DRIFT_TAG: "true", LAST_DRIFT_TAG: self.updates,
                                DRIFT_COUNT_TAG: self.drift.drift_count})
        if self.updates % self.config.snapshot_every == 0:
            self.snapshot()
        return metrics

    @property
    def logged(self) -> dict[str, float]:
        """The metrics of the latest logged point (empty before the first)."""
        return dict(self._last_metrics)

    def route(self, task_descriptions: Sequence[str]) -> list[str]:
        """The agent with the highest predicted success for each task description."""
        import torch

        features = torch.from_numpy(self.featurizer.transform(list(task_descriptions)))
        features = features.to(self.device)
        self.model.eval()
        with torch.no_grad():
            best = self.model(features).argmax(dim=1).tolist()
        return [self.config.agents[index] for index in best]

    def snapshot(self) -> Path:
        """Write a checkpoint of the whole session now (atomic, keeps the last N)."""
        run = self._require_open()
        assert self._saver is not None
        return self._saver.save(Checkpoint(
            config=config_dict(self.config),
            model_state={k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            optimizer_state=self.optimizer.state_dict(), epoch=self.updates,
            global_step=self.updates, run_id=run.run_id,
            extra={"buffer": self.buffer.state_dict(), "drift": self.drift.state_dict(),
                   "records_seen": self.records_seen},
        ))

    # --- internals --------------------------------------------------------------------------

    def _encode(self, records: list[Record],
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        import torch

        from agentnn.data import InteractionRecord

        if not records:
            raise DataError("update() got no records; pass at least one interaction record")
        # this runs on every update: comprehensions, and records parsed only when they are not
        # record objects already
        if any(type(record) is not InteractionRecord for record in records):
            parsed = [_parse_record(number, record)
                      for number, record in enumerate(records, start=1)]
        else:  # every one is a record object already
            parsed = cast("list[InteractionRecord]", records)
        agent_index = self.agent_index
        agent_ids = [agent_index.get(record.chosen_agent) for record in parsed]
        if None in agent_ids:
            number = agent_ids.index(None)
            raise DataError(
                f"record {number + 1} of the update: agent {parsed[number].chosen_agent!r} is "
                f"not one of the learner's agents ({', '.join(self.config.agents)})"
            )
        texts = [record.task_description for record in parsed]
        outcomes = [float(record.success) for record in parsed]
        features = torch.from_numpy(self.featurizer.transform(texts))
        agents = torch.tensor(agent_ids)
        success = torch.tensor(outcomes)
        if self._on_cpu:
            return features, agents, success
        return features.to(self.device), agents.to(self.device), success.to(self.device)

    def _score(self, features: torch.Tensor, agents: torch.Tensor,
               success: torch.Tensor) -> tuple[float, torch.Tensor]:
        """Prequential loss of the success prediction before learning, and its logits (the
        window counts the accuracy from them)."""
        import torch
        import torch.nn.functional as F

        self.model.eval()
        with torch.no_grad():
            logits = self.model(features).gather(1, agents.unsqueeze(1)).squeeze(1)
            loss = float(F.binary_cross_entropy_with_logits(logits, success))
        return loss, logits

    def _log_window(self) -> None:
        """Log the updates since the last point as one point at the latest update's step
        (unless a resumed run already has that step), and start a new window."""
        if not self._window.updates:
            return
        metrics = self._window.summary()
        self._window.clear()
        if self.updates > self._logged_up_to:
            self._require_open().log_metrics(metrics, step=self.updates)
        self._last_metrics = metrics

    def _restore(self, checkpoint: Checkpoint) -> None:
        self.model.load_state_dict(checkpoint.model_state)
        self.optimizer.load_state_dict(checkpoint.optimizer_state)
        self.buffer.load_state_dict(checkpoint.extra["buffer"])
        self.drift.load_state_dict(checkpoint.extra["drift"])
        self.records_seen = int(checkpoint.extra["records_seen"])
        self.updates = int(checkpoint.global_step)

    def _finish(self) -> None:
        """Last checkpoint, the final model (registered when asked) and the result."""
        from agentnn.data import routing_metadata

        checkpoint = self.snapshot() if self.updates else None
        model_uri = version = None
        if self.updates:
            model_uri, version = log_best_model(
                self.model.cpu(), builder=BUILDER, config=self.spec,
                input_example=self.featurizer.transform(["example task"]),
                register_as=self._register_as,
                metadata={**routing_metadata(self.config.agents, self.featurizer),
                          "updates": self.updates, "output": "success_logit_per_agent"},
            )
        assert self._tracker is not None  # __enter__ opened it
        self.result = TrainResult(
            run_id=self._require_open().run_id, best_metrics=dict(self._last_metrics),
            model_uri=model_uri, registered_version=version, epochs_run=self.updates,
            experiment_id=self._tracker.experiment_id, best_epoch=self.updates,
            checkpoint_dir=str(checkpoint.parent) if checkpoint else None,
        )

    def _require_open(self) -> TrackedRun:
        """The session's run; TrainerConfigError outside the ``with`` block."""
        if self._run is None:
            raise TrainerConfigError(
                "the learner is not open; use `with OnlineLearner(config) as learner:`"
            )
        return self._run


def _parse_record(number: int, record: Record) -> InteractionRecord:
    """A record given as a dict (or a subclass of the record type) as an InteractionRecord."""
    from agentnn.data import InteractionRecord

    if isinstance(record, InteractionRecord):
        return record
    if isinstance(record, dict):
        try:
            return InteractionRecord.from_dict(record)
        except DataError as error:
            raise DataError(f"record {number} of the update: {error}") from None
    raise DataError(f"record {number} of the update must be an InteractionRecord or a dict, "
                    f"got {type(record).__name__}")


def _current_exception() -> ExcInfo:
    import sys

    return sys.exc_info()


# --- streaming a log file ----------------------------------------------------------------------


def train(
    config: OnlineConfig | Mapping[str, JSONValue] | None,
    data: str | os.PathLike[str] | Sequence[Record],
    *,
    tracker: ExperimentTracker | None = None,
    register_as: str | None = None,
    resume_from: str | os.PathLike[str] | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Stream an interaction log (a JSON Lines path, or records) through one learner session.

    The log is validated as a whole first (a bad line raises before any run exists), then fed
    in ``batch_size`` chunks, one update each. With ``resume_from`` the records the earlier
    session already learned from are skipped, and the session continues in its run.
    ``on_epoch(update, metrics)`` is called after every update.
    """
    from agentnn.data import dataset_params, load_interactions

    config = check_config(config, OnlineConfig)
    if isinstance(data, (str, os.PathLike)):
        records, source = load_interactions(data), str(data)
    else:
        records, source = list(data), "records"
    if not records:
        raise TrainerConfigError("the interaction log is empty; nothing to learn from")
    if not config.agents:
        names = sorted({record.chosen_agent for record in records})
        config = check_config({**config_dict(config), "agents": names}, OnlineConfig)
    params = dataset_params(records, config.featurizer(), source=source)
    learner = OnlineLearner(config, tracker=tracker, register_as=register_as,
                            resume_from=resume_from, data_params=params)
    with learner:
        for start in range(learner.records_seen, len(records), config.batch_size):
            metrics = learner.update(records[start:start + config.batch_size])
            if on_epoch is not None:
                on_epoch(learner.updates, metrics)
    assert learner.result is not None
    return learner.result
