"""TensorBoard log folders as :class:`~agentnn.mlflow_integration.importing.source.SourceRun`\\ s.

Every folder under the given path that directly holds ``events.out.tfevents.*`` files is one
run (TensorBoard's own rule): its ``source_id`` is the folder's path relative to the given
path (the given folder itself: its own name), its run name the folder's name, its experiment by
default the given folder's name. What each part becomes:

- scalars (``add_scalar``, ``tf.summary.scalar``) -> metrics, with their step and wall time in
  ms (TensorBoard keeps scalars as 32-bit floats: ``0.1`` comes back as ``0.10000000149``);
- hparams (the HParams plugin's session start info, ``add_hparams``) -> params; a number whose
  value is whole is written without ``.0``; the session end info's status -> the run's status;
- text summaries (``add_text``) -> tags, the last value of each tag (``/text_summary`` dropped);
- anything else (images, histograms, audio, graphs, PR curves) is not imported: one line says
  how many events of which plugin were left out.

Read with TensorBoard's own record loader and compat layer
(``tensorboard.backend.event_processing.event_file_loader``, ``tensorboard.data_compat``), never
a hand-written parser. The loader stops quietly at a record it cannot read (a file cut off
mid-write, or damaged); the bytes it read are counted, so a file that stops early gives the
records before the break and one line saying where it stopped.

``tensorboard`` is an optional extra: ``pip install 'agentnn[import]'``.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentnn.errors import ConfigError, DataError
from agentnn.mlflow_integration.importing.source import MetricSeries, SourceRun

KIND = "tensorboard"
EVENT_FILE_MARK = "events.out.tfevents."
RECORD_OVERHEAD = 16  # bytes around each record: length (8), its crc (4), the data's crc (4)
TEXT_SUFFIX = "/text_summary"  # torch's add_text appends it to the tag
HPARAMS_PLUGIN, SCALARS_PLUGIN, TEXT_PLUGIN = "hparams", "scalars", "text"
SESSION_STATUS = {1: "FINISHED", 2: "FAILED", 3: "RUNNING"}  # hparams api.proto Status
EXTRA_HINT = "pip install 'agentnn[import]'"


class TensorBoardReader:
    """Finds and reads TensorBoard runs (see the module docstring)."""

    kind = KIND

    def detect(self, path: Path) -> bool:
        """True for an event file, or a folder with an event file anywhere below it."""
        if path.is_file():
            return EVENT_FILE_MARK in path.name
        return path.is_dir() and any(True for _ in _run_folders(path))

    def runs(self, path: Path, experiment: str | None) -> Iterator[SourceRun]:
        """Each run folder under ``path``, read whole, in path order."""
        _require_tensorboard()
        root = path.resolve()
        if root.is_file():
            root = root.parent
        folders = sorted(_run_folders(root))
        if not folders:
            raise DataError(f"{path}: no TensorBoard event files (events.out.tfevents.*) in it",
                            str(path))
        default_experiment = experiment or root.name
        for folder in folders:
            relative = folder.relative_to(root).as_posix()
            source_id = root.name if relative == "." else relative
            yield read_run(folder, source_id, default_experiment)


def read_run(folder: Path, source_id: str, experiment: str) -> SourceRun:
    """One run: every event file directly in ``folder``, in name (= creation) order."""
    run = SourceRun(kind=KIND, source_id=source_id, experiment=experiment, run_name=folder.name)
    state = _RunState(run)
    files = sorted(p for p in folder.iterdir() if p.is_file() and EVENT_FILE_MARK in p.name)
    for path in files:
        state.read_file(path, folder)
    state.finish()
    return run


class _RunState:
    """What one run's events add up to while its files are read."""

    def __init__(self, run: SourceRun) -> None:
        self.run = run
        self.plugins: dict[str, str] = {}  # tag -> plugin, from its first event's metadata
        self.left_out: Counter[str] = Counter()  # plugin -> events not imported
        self.first_time: float | None = None
        self.last_time: float | None = None
        self.bad_values: Counter[str] = Counter()

    def read_file(self, path: Path, folder: Path) -> None:
        from tensorboard.backend.event_processing import event_file_loader
        from tensorboard.compat.proto import event_pb2

        size = path.stat().st_size
        read = 0
        loader = event_file_loader.RawEventFileLoader(str(path))
        parse = event_pb2.Event.FromString
        for record in loader.Load():
            read += len(record) + RECORD_OVERHEAD
            try:
                event = parse(record)
            except Exception as error:  # a record whose checksum passed but whose event does not
                self.run.skipped.append(f"{path.relative_to(folder)}: an event that does not "
                                        f"parse ({type(error).__name__}) was skipped")
                continue
            self._event(event)
        if read < size:
            self.run.skipped.append(
                f"{path.name}: unreadable from byte {read} of {size} (the file was cut off or is "
                "damaged); the events before that point are imported"
            )

    def _event(self, event: Any) -> None:
        wall_time = float(event.wall_time)
        if wall_time > 0:
            if self.first_time is None or wall_time < self.first_time:
                self.first_time = wall_time
            if self.last_time is None or wall_time > self.last_time:
                self.last_time = wall_time
        if not event.HasField("summary"):
            return
        step = int(event.step)
        timestamp_ms = int(round(wall_time * 1000))
        for value in event.summary.value:
            if value.HasField("simple_value"):  # torch's add_scalar, TF1 scalars
                self._point(value.tag, step, timestamp_ms, float(value.simple_value))
                continue
            self._value(value, step, timestamp_ms)

    def _value(self, value: Any, step: int, timestamp_ms: int) -> None:
        from tensorboard import data_compat

        value = data_compat.migrate_value(value)  # legacy images, histograms, ... as tensors
        plugin = value.metadata.plugin_data.plugin_name if value.HasField("metadata") else ""
        if plugin:
            self.plugins.setdefault(value.tag, plugin)
        plugin = self.plugins.get(value.tag, plugin)
        if plugin == SCALARS_PLUGIN:
            number = _tensor_value(value.tensor)
            if isinstance(number, (int, float)) and not isinstance(number, bool):
                self._point(value.tag, step, timestamp_ms, float(number))
            else:
                self.bad_values[value.tag] += 1
        elif plugin == HPARAMS_PLUGIN:
            self._hparams(value)
        elif plugin == TEXT_PLUGIN:
            self._text(value)
        else:
            self.left_out[plugin or "unknown"] += 1

    def _point(self, tag: str, step: int, timestamp_ms: int, value: float) -> None:
        series = self.run.metrics.get(tag)
        if series is None:
            series = self.run.metrics[tag] = MetricSeries(tag)
        series.steps.append(step)
        series.timestamps_ms.append(timestamp_ms)
        series.values.append(value)

    def _hparams(self, value: Any) -> None:
        from tensorboard.plugins.hparams import metadata

        content = value.metadata.plugin_data.content
        if value.tag == metadata.SESSION_START_INFO_TAG:
            info = metadata.parse_session_start_info_plugin_data(content)
            for name, item in info.hparams.items():
                self.run.params[name] = _hparam_text(item)
            if info.group_name:
                self.run.tags["tensorboard.hparams_group"] = info.group_name
            if info.start_time_secs:
                self.run.start_time_ms = int(round(info.start_time_secs * 1000))
        elif value.tag == metadata.SESSION_END_INFO_TAG:
            end = metadata.parse_session_end_info_plugin_data(content)
            self.run.status = SESSION_STATUS.get(int(end.status), self.run.status)
            if end.end_time_secs:
                self.run.end_time_ms = int(round(end.end_time_secs * 1000))
        # the experiment summary (_hparams_/experiment) describes the domain only

    def _text(self, value: Any) -> None:
        from tensorboard.util import tensor_util

        array = tensor_util.make_ndarray(value.tensor)
        items = [item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)
                 for item in array.reshape(-1).tolist()]
        tag = value.tag[:-len(TEXT_SUFFIX)] if value.tag.endswith(TEXT_SUFFIX) else value.tag
        self.run.tags[tag] = "\n".join(items)

    def finish(self) -> None:
        run = self.run
        if run.start_time_ms is None and self.first_time is not None:
            run.start_time_ms = int(round(self.first_time * 1000))
        if run.end_time_ms is None and self.last_time is not None:
            run.end_time_ms = int(round(self.last_time * 1000))
        for plugin, count in sorted(self.left_out.items()):
            run.skipped.append(f"{count} {plugin} event(s) not imported (MLflow metrics hold "
                               "scalars; params and tags hold text)")
        for tag, count in sorted(self.bad_values.items()):
            run.skipped.append(f"scalar {tag!r}: {count} value(s) that are not one number skipped")


def _tensor_value(tensor: Any) -> object:
    """The single number a scalar summary's tensor holds (None when it is not one)."""
    from tensorboard.util import tensor_util

    array = tensor_util.make_ndarray(tensor)
    if array.size != 1:
        return None
    item: object = array.reshape(-1)[0].item()
    return item


def _hparam_text(item: Any) -> str:
    """An hparam's value as a param: text as it is, booleans as True/False, whole numbers
    without ``.0`` (TensorBoard keeps every number as a double, ints included)."""
    kind = item.WhichOneof("kind")
    if kind == "string_value":
        return str(item.string_value)
    if kind == "bool_value":
        return str(bool(item.bool_value))
    if kind == "number_value":
        number = float(item.number_value)
        if math.isfinite(number) and number.is_integer() and abs(number) < 2**53:
            return str(int(number))
        return repr(number)
    return json.dumps(_plain(item))


def _plain(item: Any) -> object:
    """A protobuf ``Value`` (list, struct or null) as plain Python, for JSON."""
    kind = item.WhichOneof("kind")
    if kind == "list_value":
        return [_plain(member) for member in item.list_value.values]
    if kind == "struct_value":
        return {key: _plain(member) for key, member in item.struct_value.fields.items()}
    if kind in ("string_value", "bool_value", "number_value"):
        plain: object = getattr(item, kind)
        return plain
    return None


def _run_folders(root: Path) -> Iterator[Path]:
    """Every folder under ``root`` (itself included) that directly holds an event file."""
    for folder, _, names in os.walk(root):
        if any(EVENT_FILE_MARK in name for name in names):
            yield Path(folder)


def _require_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"reading TensorBoard logs needs the tensorboard package: {EXTRA_HINT}"
        ) from None
