"""A journal chunk reads back exactly the records written into it, whatever they hold.

Chunks are written by orjson, or by ``json`` when orjson cannot write them as they are (NaN and
±inf, lone surrogates, integers beyond 64 bits); either way the reader must get the same records.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from agentnn.mlflow_integration.journal.format import decode_chunk, encode_chunk
from agentnn.mlflow_integration.journal.records import (
    EndRecord,
    MetricRecord,
    ParamRecord,
    TagRecord,
)

TEXT = st.text(st.characters(codec=None), max_size=20)  # surrogates and non-ASCII included
TIMES = st.integers(0, 2**63 - 1)
STEPS = st.integers(-(2**70), 2**70)
RECORDS = st.one_of(
    st.builds(MetricRecord, TEXT, st.floats(), TIMES, STEPS),
    st.builds(ParamRecord, TEXT, TEXT),
    st.builds(TagRecord, TEXT, TEXT),
    st.builds(EndRecord, st.sampled_from(["FINISHED", "FAILED", "KILLED"]), TIMES,
              applied=st.booleans()),
)


def comparable(records: list) -> list:
    """NaN is not equal to itself: compare it as a marker."""
    return [("nan", r.key, r.timestamp, r.step)
            if isinstance(r, MetricRecord) and math.isnan(r.value) else r for r in records]


@given(st.lists(RECORDS, min_size=1, max_size=30))
def test_every_record_reads_back_as_it_was_written(records: list) -> None:
    line = encode_chunk(records)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert comparable(decode_chunk(line[:-1], 2)) == comparable(records)


def test_a_chunk_of_finite_points_and_one_with_nan_and_infinity_both_read_back() -> None:
    finite = [MetricRecord("loss", 0.5, 1, 1), MetricRecord("acc", 1e-05, 1, 1)]
    nonfinite = finite + [MetricRecord("loss", math.inf, 2, 2),
                          MetricRecord("acc", -math.inf, 2, 2),
                          MetricRecord("lr", math.nan, 2, 2)]
    assert decode_chunk(encode_chunk(finite)[:-1], 2) == finite
    assert b"Infinity" in encode_chunk(nonfinite)  # not null: NaN and ±inf stay what they were
    assert comparable(decode_chunk(encode_chunk(nonfinite)[:-1], 2)) == comparable(nonfinite)


def test_a_text_that_says_null_reads_back_as_that_text() -> None:
    records = [TagRecord("note", "null"), ParamRecord("optimizer", "null_sgd"),
               MetricRecord("loss", 0.5, 1, 1)]
    assert decode_chunk(encode_chunk(records)[:-1], 2) == records
