"""Fuzz: random and hostile spec.json, MLmodel, weights and pt2 files thrown at the loaders.

Whatever a folder holds, loading it must never call code it names (a canary builder and a
pickle whose unpickling calls the canary; the canary writes a file, which must never appear),
never open a file outside the folder (an audit hook watches every ``open``), and never raise
anything but agentnn's errors, in one line.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_helpers import MLP_CONFIG, make_mlp

from agentnn.errors import AgentNNError
from agentnn.managers.builders import MLP_BUILDER
from agentnn.mlflow_integration.models.format import (
    DATA_DIR_NAME,
    LOADER_MODULE,
    SPEC_FILE,
    WEIGHTS_FILE,
    file_sha256,
    load_torch_model,
    save_torch_model,
)

CANARY = Path(tempfile.gettempdir()) / f"agentnn-fuzz-canary-{os.getpid()}"
CANARY_NAMES = [f"{__name__}:canary_builder", f"{__name__}.canary_builder",
                "tests.models.test_model_fuzz:canary_builder", "agentnn.cli.main:main",
                "agentnn.quickstart:main", "os:system", "builtins:exec", "posix.system"]
EXAMPLES = 60  # modest: CI time


def canary_builder(config: object = None) -> None:
    """What a hostile file would like agentnn to run: it leaves a file behind."""
    CANARY.write_text("the loader ran code a model file named")


class _Canary:
    def __reduce__(self):
        return (canary_builder, ({},))


CANARY_PICKLE = pickle.dumps(_Canary())


# --- watching every open --------------------------------------------------------------------

_FORBIDDEN: list[Path] = []
_OPENED_OUTSIDE: list[str] = []


def _audit(event: str, args: tuple) -> None:
    if event != "open" or not _FORBIDDEN or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.fsdecode(args[0])
    for forbidden in _FORBIDDEN:
        if os.path.realpath(path).startswith(str(forbidden)):
            _OPENED_OUTSIDE.append(path)


sys.addaudithook(_audit)


# --- valid material to mutate ----------------------------------------------------------------


def _valid_model(folder: Path, seed: int) -> Path:
    return save_torch_model(make_mlp(seed), folder, builder=MLP_BUILDER, config=MLP_CONFIG)


_TEMPLATES = Path(tempfile.mkdtemp(prefix="agentnn-fuzz-templates-"))
_VALID = _valid_model(_TEMPLATES / "valid", 0)
VALID_WEIGHTS = (_VALID / WEIGHTS_FILE).read_bytes()
VALID_SPEC = json.loads((_VALID / SPEC_FILE).read_text())


def _pt2_archive() -> bytes:
    import torch

    module = torch.nn.Linear(3, 2).eval()
    program = torch.export.export(module, (torch.ones(2, 3),))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return buffer.getvalue()


VALID_PT2 = _pt2_archive()


def _with_record(archive: bytes, name: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(out, "w") as target:
        prefix = source.namelist()[0].split("/", 1)[0]
        for info in source.infolist():
            target.writestr(info, source.read(info))
        target.writestr(f"{prefix}/{name}", content)
    return out.getvalue()


# --- strategies ------------------------------------------------------------------------------

json_scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
sizes = st.integers(-3, 12) | st.sampled_from([10**7, 10**13, 2**62])
mlp_configs = st.fixed_dictionaries({}, optional={
    "n_features": sizes | json_scalars, "hidden": st.lists(sizes, max_size=3) | json_values,
    "n_outputs": sizes, "heads": st.dictionaries(st.text(max_size=6), sizes, max_size=3),
    "activation": st.sampled_from(["relu", "gelu", "nope"]), "__init__": json_values,
})
paths = st.sampled_from([
    WEIGHTS_FILE, "./" + WEIGHTS_FILE, "OUTSIDE_ABS", "../outside/" + WEIGHTS_FILE,
    "sub/../../outside/" + WEIGHTS_FILE, "link_out", "/dev/zero", "/proc/self/environ", ".",
    "", "~/.ssh/id_rsa", "C:\\\\windows\\\\x", "data/../../../etc/passwd",
]) | st.text(max_size=20)
builders = st.sampled_from([*CANARY_NAMES, MLP_BUILDER, "agentnn.managers.builders:build_mlp",
                            "online_learning", "", "../x"]) | st.text(max_size=20) | json_values
spec_fields = {
    "format_version": st.sampled_from([1, 2, "1", True, None, 1.0]),
    "builder": builders,
    "config": st.just(MLP_CONFIG) | mlp_configs | mlp_configs | json_values,
    "sha256": st.sampled_from(["MATCH", "MATCH", "OUTSIDE"]) | st.text(max_size=70),
    "weights": paths,
    "metadata": json_values,
}
# A whole random spec, or a valid one with one field replaced: the second kind gets past the
# first checks and reaches the registry, the builder, the safetensors header and the shapes.
specs = st.fixed_dictionaries({}, optional=spec_fields)
edited_specs = st.one_of(*(
    st.fixed_dictionaries({key: value}).map(lambda edit: {**VALID_SPEC, "sha256": "MATCH", **edit})
    for key, value in spec_fields.items()
))
weights_files = st.one_of(
    st.just(VALID_WEIGHTS),
    st.just(VALID_WEIGHTS),
    st.binary(max_size=300),
    st.integers(0, len(VALID_WEIGHTS)).map(lambda cut: VALID_WEIGHTS[:cut]),
    st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), min_size=1, max_size=4).map(
        lambda flips: _flipped(VALID_WEIGHTS, flips)),
    st.just(CANARY_PICKLE),
)


def _flipped(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    mutable = bytearray(data)
    for index, value in flips:
        mutable[index % len(mutable)] = value
    return bytes(mutable)


# --- the loops -------------------------------------------------------------------------------


def _lay_out(root: Path, spec: object, spec_text: str | None, weights: bytes) -> Path:
    """A model folder beside an ``outside`` folder holding valid weights it must never read."""
    outside = _valid_model(root / "outside", 1)
    folder = root / "model"
    folder.mkdir()
    (folder / WEIGHTS_FILE).write_bytes(weights)
    (folder / "link_out").symlink_to(outside / WEIGHTS_FILE)
    if isinstance(spec, dict):
        spec = dict(spec)
        if spec.get("sha256") == "MATCH":
            spec["sha256"] = file_sha256(folder / WEIGHTS_FILE)
        elif spec.get("sha256") == "OUTSIDE":
            spec["sha256"] = file_sha256(outside / WEIGHTS_FILE)
        if spec.get("weights") == "OUTSIDE_ABS":
            spec["weights"] = str(outside / WEIGHTS_FILE)
    text = spec_text if spec_text is not None else json.dumps(spec)
    (folder / SPEC_FILE).write_text(text, encoding="utf-8", errors="surrogatepass")
    return folder


def _load_and_check(load, root: Path) -> None:
    """Run one load: agentnn's errors only, one line, no canary, nothing opened outside."""
    _FORBIDDEN[:] = [(root / "outside").resolve()]
    _OPENED_OUTSIDE.clear()
    try:
        load()
    except AgentNNError as error:
        assert "\n" not in str(error), str(error)
    finally:
        _FORBIDDEN.clear()
    assert not CANARY.exists(), "a model file made the loader run code"
    assert not _OPENED_OUTSIDE, f"the loader opened {_OPENED_OUTSIDE}"


@pytest.fixture(autouse=True)
def _no_canary():
    CANARY.unlink(missing_ok=True)
    yield
    assert not CANARY.exists()


@settings(max_examples=EXAMPLES, deadline=None)
@given(spec=specs, raw=st.none() | st.text(max_size=60), weights=weights_files)
def test_random_spec_and_weights_never_escape_agentnn_errors(spec, raw, weights):
    with tempfile.TemporaryDirectory(prefix="agentnn-fuzz-") as tmp:
        root = Path(tmp)
        folder = _lay_out(root, spec, raw, weights)
        _load_and_check(lambda: load_torch_model(folder), root)


@settings(max_examples=EXAMPLES, deadline=None)
@given(spec=edited_specs, weights=st.just(VALID_WEIGHTS) | weights_files)
def test_one_hostile_field_in_a_valid_model_never_escapes_agentnn_errors(spec, weights):
    with tempfile.TemporaryDirectory(prefix="agentnn-fuzz-") as tmp:
        root = Path(tmp)
        folder = _lay_out(root, spec, None, weights)
        _load_and_check(lambda: load_torch_model(folder), root)


flavour_confs = st.fixed_dictionaries({}, optional={
    "python_function": st.fixed_dictionaries({}, optional={
        "loader_module": st.sampled_from([LOADER_MODULE, "mlflow.pytorch", "os", "builtins"])
        | st.text(max_size=10),
        "data": paths | st.just(f"data/{DATA_DIR_NAME}"),
        "code": paths,
    }),
    "pytorch": st.fixed_dictionaries({}, optional={
        "model_data": paths | st.just("data"), "code": paths,
        "pytorch_version": st.text(max_size=8),
    }),
    "sklearn": st.fixed_dictionaries({"pickled_model": paths}),
})
mlmodels = st.fixed_dictionaries({"flavors": flavour_confs}, optional={
    "run_id": json_values, "model_id": json_values, "metadata": json_values,
    "signature": json_values,
})
data_payloads = st.sampled_from(["pt2", "pt2-evil", "pickle", "junk", "none"])


@pytest.fixture(scope="module")
def loader(tmp_path_factory):
    from agentnn.mlflow_integration.models.loading import ModelLoader

    root = tmp_path_factory.mktemp("fuzz-store")
    return ModelLoader(f"sqlite:///{root / 'store.db'}", cache_dir=root / "cache")


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mlmodel=mlmodels, raw=st.none() | st.text(max_size=60), payload=data_payloads,
       spec=edited_specs, weights=st.just(VALID_WEIGHTS) | weights_files)
def test_random_mlflow_folders_never_escape_agentnn_errors(loader, mlmodel, raw, payload, spec,
                                                            weights):
    with tempfile.TemporaryDirectory(prefix="agentnn-fuzz-") as tmp:
        root = Path(tmp)
        inner = _lay_out(root, spec, None, weights)  # the safe-format data inside
        folder = root / "mlflow-model"
        shutil.copytree(inner, folder / "data" / DATA_DIR_NAME, symlinks=True)
        data = folder / "data"
        if payload == "pt2":
            (data / "model.pt2").write_bytes(VALID_PT2)
        elif payload == "pt2-evil":
            (data / "model.pt2").write_bytes(
                _with_record(VALID_PT2, "data/constants/evil.pkl", CANARY_PICKLE))
        elif payload == "pickle":
            (data / "model.pth").write_bytes(CANARY_PICKLE)
            (data / "pickle_module_info.txt").write_text("pickle")
        elif payload == "junk":
            (data / "model.pt2").write_bytes(weights)
        text = raw if raw is not None else yaml.safe_dump(mlmodel)
        (folder / "MLmodel").write_text(text, encoding="utf-8", errors="surrogatepass")
        _load_and_check(lambda: loader.load(str(folder)), root)


def test_a_pt2_archive_with_a_pickle_record_asks_for_trust(loader, tmp_path):
    from agentnn.errors import UnsafeModelError

    folder = tmp_path / "m"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "model.pt2").write_bytes(
        _with_record(VALID_PT2, "data/constants/evil.pkl", CANARY_PICKLE))
    (folder / "MLmodel").write_text(yaml.safe_dump({"flavors": {"pytorch": {
        "model_data": "data"}}}))
    with pytest.raises(UnsafeModelError, match="pt2.*free of pickle.*trust=True"):
        loader.load(str(folder))
    assert not CANARY.exists()
