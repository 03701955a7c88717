"""Journal format 2, old journals, and damage: named, set aside, never a reason to stop or spin.

Every `agentnn model sync` here runs as a real subprocess with a timeout: the timeout is the
guard that it returns, not a timing assertion.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import zlib
from pathlib import Path

import mlflow
import pytest

from agentnn.mlflow_integration.journal.buffered import new_header, new_journal_path
from agentnn.mlflow_integration.journal.format import (
    DAMAGED_SUFFIX,
    FORMAT_VERSION,
    JOURNAL_SUFFIX,
    Header,
    damaged_path,
    decode_chunk,
    encode_chunk,
    list_journals,
)
from agentnn.mlflow_integration.journal.process import TrainingProcess
from agentnn.mlflow_integration.journal.records import (
    EndRecord,
    MetricRecord,
    ParamRecord,
    TagRecord,
)

FIXTURES = Path(__file__).parent / "fixtures"
SYNC_GUARD = 300  # seconds; a sync that does not return within this is a hang
T0 = 1_764_400_000_000  # a fixed timestamp (ms) for the records written here


@pytest.fixture
def journal_dir(workdir: Path) -> Path:
    """A journal folder of the test's own, so no background writer of the session serves it."""
    path = workdir / "journal"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def gone_process() -> TrainingProcess:
    """A training process that has exited (a start time no live process has, should the pid be
    reused)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=60)
    return TrainingProcess(socket.gethostname(), child.pid, start=1)


def sync(store_uri: str, journal_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri,
           "AGENTNN_JOURNAL_DIR": str(journal_dir)}
    return subprocess.run(
        [sys.executable, "-m", "agentnn", "model", "sync", "--timeout", "30"],
        capture_output=True, text=True, timeout=SYNC_GUARD, env=env,
    )


def new_run(store_uri: str) -> str:
    client = mlflow.MlflowClient(store_uri)
    experiment = client.get_experiment_by_name("damage") or client.get_experiment(
        client.create_experiment("damage"))
    return client.create_run(experiment.experiment_id).info.run_id


def metrics(steps: range, key: str = "loss") -> list[MetricRecord]:
    return [MetricRecord(key, float(step), T0 + step, step) for step in steps]


def write_journal(
    journal_dir: Path, run_id: str, store_uri: str, body: bytes,
    process: TrainingProcess | None,
) -> Path:
    path = new_journal_path(journal_dir, run_id)
    path.write_bytes(Header(run_id, store_uri, T0, process=process).to_line() + body)
    return path


def steps_in_store(store_uri: str, run_id: str, key: str = "loss") -> list[int]:
    history = mlflow.MlflowClient(store_uri).get_metric_history(run_id, key)
    return sorted(point.step for point in history)


def damaged(chunk: bytes) -> bytes:
    """The same chunk line with one byte of its records changed: the checksum no longer fits."""
    position = chunk.index(b"loss")
    return chunk[:position] + b"LOSS" + chunk[position + 4:]


# --- the format ----------------------------------------------------------------------------


@pytest.mark.parametrize("record", [
    MetricRecord("loss", 0.5, T0, 3),
    MetricRecord("loss", float("nan"), T0, 4),
    ParamRecord("lr", "0.01"),
    TagRecord("stage", "dev"),
    EndRecord("FINISHED", T0, applied=True),
])
def test_each_record_round_trips_through_its_json_form(record):
    line = encode_chunk([record])
    checksum, _, payload = line.rstrip(b"\n").partition(b" ")
    assert int(checksum, 16) == zlib.crc32(payload)
    decoded = decode_chunk(line.rstrip(b"\n"), FORMAT_VERSION)
    assert repr(decoded) == repr([record])


def test_header_names_the_training_process(workdir: Path):
    header = new_header("run", "sqlite:///x.db")
    assert header.format == 2
    assert header.process == TrainingProcess.current()
    assert header.process.pid == os.getpid() and not header.process_gone()


def test_a_version_1_journal_still_replays(store_uri: str, journal_dir: Path):
    run_id = new_run(store_uri)
    text = (FIXTURES / "journal_v1.jsonl").read_text()
    text = text.replace('"RUN_ID"', json.dumps(run_id))
    text = text.replace('"TRACKING_URI"', json.dumps(store_uri))
    (journal_dir / f"{run_id}.1{JOURNAL_SUFFIX}").write_text(text)

    result = sync(store_uri, journal_dir)

    assert result.returncode == 0, result.stderr
    run = mlflow.MlflowClient(store_uri).get_run(run_id)
    assert steps_in_store(store_uri, run_id) == list(range(10))
    assert run.data.params == {"lr": "0.01"} and run.data.tags["stage"] == "v1"
    assert run.info.status == "FINISHED" and run.info.end_time == 1764400002000
    assert list_journals(journal_dir) == []  # sent whole, then removed


# --- damage --------------------------------------------------------------------------------


def test_a_damaged_chunk_is_set_aside_and_every_other_chunk_and_journal_sent(
    store_uri: str, journal_dir: Path, gone_process: TrainingProcess
):
    run_id, healthy_run = new_run(store_uri), new_run(store_uri)
    bad_chunk = damaged(encode_chunk(metrics(range(100, 105))))
    body = (encode_chunk(metrics(range(5))) + bad_chunk + encode_chunk(metrics(range(5, 10)))
            + encode_chunk([EndRecord("FINISHED", T0 + 50)]))
    journal = write_journal(journal_dir, run_id, store_uri, body, gone_process)
    write_journal(journal_dir, healthy_run, store_uri,
                  encode_chunk([*metrics(range(3)), EndRecord("FINISHED", T0 + 9)]), gone_process)

    result = sync(store_uri, journal_dir)

    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "damaged chunk" in line]
    assert len(lines) == 1 and str(journal) in lines[0], result.stderr
    assert steps_in_store(store_uri, run_id) == list(range(10))
    assert damaged_path(journal).read_bytes() == bad_chunk  # kept whole, apart
    assert not list(journal_dir.glob(f"*{DAMAGED_SUFFIX}*.jsonl"))
    assert steps_in_store(store_uri, healthy_run) == [0, 1, 2]
    client = mlflow.MlflowClient(store_uri)
    assert client.get_run(run_id).info.status == "FINISHED"
    assert client.get_run(healthy_run).info.status == "FINISHED"


def test_a_torn_last_line_waits_while_its_training_process_lives(
    store_uri: str, journal_dir: Path
):
    run_id = new_run(store_uri)
    torn = encode_chunk(metrics(range(5, 10)))[:-7]  # a write in progress
    journal = write_journal(journal_dir, run_id, store_uri,
                            encode_chunk(metrics(range(5))) + torn, TrainingProcess.current())

    result = sync(store_uri, journal_dir)

    assert result.returncode == 0, result.stderr
    assert "left for later" in result.stdout and str(journal) in result.stdout
    assert steps_in_store(store_uri, run_id) == list(range(5))
    assert journal.exists() and not damaged_path(journal).exists()
    assert mlflow.MlflowClient(store_uri).get_run(run_id).info.status == "RUNNING"


def test_a_torn_last_line_of_a_dead_process_is_set_aside_and_its_run_killed(
    store_uri: str, journal_dir: Path, gone_process: TrainingProcess
):
    run_id = new_run(store_uri)
    torn = encode_chunk(metrics(range(5, 10)))[:-7]  # what a crash in mid-write leaves
    journal = write_journal(journal_dir, run_id, store_uri,
                            encode_chunk(metrics(range(5))) + torn, gone_process)

    result = sync(store_uri, journal_dir)

    assert result.returncode == 0, result.stderr
    assert "cut off" in result.stderr and "KILLED" in result.stderr
    assert damaged_path(journal).read_bytes() == torn + b"\n"
    run = mlflow.MlflowClient(store_uri).get_run(run_id)
    assert steps_in_store(store_uri, run_id) == list(range(5))
    assert run.info.status == "KILLED" and run.info.end_time == T0 + 4  # its last record


def test_a_broken_header_is_named_and_the_other_journals_still_sent(
    store_uri: str, journal_dir: Path, gone_process: TrainingProcess
):
    broken = journal_dir / f"broken.1{JOURNAL_SUFFIX}"
    broken.write_bytes(b'{"run_id": "x", "tracking_ur\xff\n' + encode_chunk(metrics(range(3))))
    healthy_run = new_run(store_uri)
    write_journal(journal_dir, healthy_run, store_uri,
                  encode_chunk([*metrics(range(3)), EndRecord("FINISHED", T0 + 9)]), gone_process)

    result = sync(store_uri, journal_dir)

    assert result.returncode == 0, result.stderr
    assert f"journal {broken}: broken header" in result.stderr
    assert not broken.exists() and damaged_path(broken).exists()
    assert steps_in_store(store_uri, healthy_run) == [0, 1, 2]


def test_a_header_cut_off_by_a_crash_is_set_aside(store_uri: str, journal_dir: Path):
    cut = journal_dir / f"cut.1{JOURNAL_SUFFIX}"
    cut.write_bytes(b'{"format": 2, "run_id": "abc", "track')
    an_hour_ago = time.time() - 3600
    os.utime(cut, (an_hour_ago, an_hour_ago))  # long past any write in progress

    result = sync(store_uri, journal_dir)

    assert result.returncode == 0, result.stderr
    assert f"journal {cut}: broken header" in result.stderr
    assert damaged_path(cut).exists() and not cut.exists()


def test_an_orphaned_writer_facing_a_torn_line_exits(store_uri: str, journal_dir: Path,
                                                     gone_process: TrainingProcess):
    run_id = new_run(store_uri)
    torn = encode_chunk(metrics(range(5)))[:-3]
    write_journal(journal_dir, run_id, store_uri, torn, TrainingProcess.current())

    result = subprocess.run(
        [sys.executable, "-m", "agentnn.mlflow_integration.writer", str(journal_dir),
         "--parent", str(gone_process.pid)],
        capture_output=True, text=True, timeout=SYNC_GUARD,
    )

    assert result.returncode == 0, result.stderr
