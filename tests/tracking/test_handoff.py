"""The chunks a run hands to its own process's writer thread are the chunks in its journal.

The writer thread takes what its process just wrote from memory instead of reading it back; the
file stays the record, so what it takes must be exactly what any writer would read there, and
whatever is not held (over the limit, behind the cursor) is still read from the file.
"""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from writer_helpers import wait_until

from agentnn.mlflow_integration.journal.buffered import (
    HANDOFF,
    BufferedJournal,
    Handoff,
    new_header,
)
from agentnn.mlflow_integration.journal.format import read_header, scan_chunks
from agentnn.mlflow_integration.journal.records import (
    EndRecord,
    MetricRecord,
    ParamRecord,
    TagRecord,
)

TEXT = st.text(max_size=12)
RECORDS = st.one_of(
    st.builds(MetricRecord, TEXT, st.floats(), st.integers(0, 2**40), st.integers(-5, 10**6)),
    st.builds(ParamRecord, TEXT, TEXT),
    st.builds(TagRecord, TEXT, TEXT),
    st.builds(EndRecord, st.sampled_from(["FINISHED", "FAILED"]), st.integers(0, 2**40)),
)


def comparable(chunks: list) -> list:
    """Chunks as plain values; NaN is not equal to itself, so it is compared as a marker."""
    return [(chunk.start, chunk.end, chunk.damage,
             [("nan", r.key) if type(r) is MetricRecord and math.isnan(r.value) else r
              for r in chunk.records]) for chunk in chunks]


def write(path: Path, flushes: list[list], handoff: Handoff | None) -> int:
    """Append each list of records in a flush of its own; returns the first chunk's offset."""
    journal = BufferedJournal(path, new_header("run", "sqlite:///x.db"), flush_interval=3600)
    journal.handoff = handoff
    for records in flushes:
        journal.add_all(records)
        journal.flush()
    journal.close(sync=False)
    return read_header(path)[1]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flushes=st.lists(st.lists(RECORDS, max_size=12), min_size=1, max_size=6),
       limit=st.integers(0, 40))
def test_what_the_writer_takes_is_what_it_would_read(tmp_path_factory, flushes, limit) -> None:
    path = tmp_path_factory.mktemp("handoff") / "run.1.jsonl"
    handoff = Handoff(limit)
    first = write(path, flushes, handoff)

    taken = list(scan_chunks(path, first, 2, handoff))
    read = list(scan_chunks(path, first, 2))

    assert comparable(taken) == comparable(read)
    assert [r for chunk in read for r in chunk.records] == [r for f in flushes for r in f] or any(
        type(r) is MetricRecord and math.isnan(r.value) for f in flushes for r in f)
    assert handoff.held == 0  # nothing is kept once taken


def test_chunks_over_the_limit_are_read_from_the_file(tmp_path) -> None:
    handoff = Handoff(limit=3)
    flushes = [[MetricRecord("loss", float(step), 1, step)] * 2 for step in range(4)]
    first = write(tmp_path / "run.1.jsonl", flushes, handoff)
    assert handoff.held == 2  # the first chunk fit, the next would not have

    chunks = list(scan_chunks(tmp_path / "run.1.jsonl", first, 2, handoff))

    assert [chunk.records for chunk in chunks] == flushes
    assert handoff.held == 0


def test_chunks_behind_the_cursor_are_let_go(tmp_path) -> None:
    handoff = Handoff()
    path = tmp_path / "run.1.jsonl"
    flushes = [[TagRecord("note", str(n))] for n in range(3)]
    first = write(path, flushes, handoff)
    second = next(scan_chunks(path, first, 2)).end  # a writer that read the first chunk itself

    chunks = list(scan_chunks(path, second, 2, handoff))

    assert [chunk.records for chunk in chunks] == flushes[1:]
    assert handoff.held == 0


def test_a_journal_named_from_two_folders_is_one_journal(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    handoff = Handoff()
    first = write(Path("run.1.jsonl"), [[TagRecord("stage", "dev")]], handoff)  # relative

    chunks = list(scan_chunks(tmp_path / "run.1.jsonl", first, 2, handoff))  # absolute

    assert [chunk.records for chunk in chunks] == [[TagRecord("stage", "dev")]]
    assert handoff.held == 0


def test_a_run_served_by_its_own_writer_thread_keeps_nothing_once_sent(tracker, client) -> None:
    with tracker.start_run() as run:
        assert run._journal.handoff is HANDOFF  # this process's thread serves it
        for step in range(3000):
            run.log_metrics({"loss": 1.0 / (step + 1), "accuracy": step / 3000}, step=step)

    history = client.get_metric_history(run.run_id, "loss")
    assert [m.step for m in history] == list(range(3000))
    assert history[-1].value == 1.0 / 3000
    # The end record follows the drain; once the writer has it, the journal is done with.
    assert wait_until(lambda: not run._journal.path.exists())
    assert HANDOFF.held == 0
