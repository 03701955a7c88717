"""The bulk ingest route of the agentnn app, against the real server and its PostgreSQL tables:
a request is stored whole or not at all, a resent one stores nothing twice, a READ-only user
gets 403, and whatever is wrong with a body gets one 4xx answer that says why."""

from __future__ import annotations

import base64
import gzip
import json
import math
import urllib.error
import urllib.request
import uuid
import zlib

import pytest
import team_servers as ts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentnn.mlflow_integration.journal import transfer
from agentnn.mlflow_integration.journal.format import encode_chunk
from agentnn.mlflow_integration.journal.records import (
    EndRecord,
    MetricRecord,
    ParamRecord,
    TagRecord,
)

DATABASE = "agentnn_tracking"
T0 = 1_733_500_000_000


def post(server, run_id: str, body: bytes, *, user: str = ts.ALICE,
         password: str = ts.ALICE_PASSWORD, encoding: str = "deflate") -> tuple[int, dict]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(
        server.url + transfer.chunks_path(run_id), data=body, method="POST",
        headers={"Authorization": f"Basic {token}", "Content-Encoding": encoding,
                 "Content-Type": transfer.CONTENT_TYPE},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def new_run(server) -> str:
    client = ts_client(server)
    experiment_id = client.create_experiment(f"ingest-{uuid.uuid4().hex[:12]}")
    return client.create_run(experiment_id).info.run_id


def ts_client(server):
    import mlflow

    return mlflow.MlflowClient(server.as_user(ts.ALICE, ts.ALICE_PASSWORD))


def rows(postgres, run_id: str) -> dict[str, int]:
    """How many rows the run has in each table the ingest writes."""
    counts = {}
    for table in ("metrics", "latest_metrics", "params", "tags"):
        out = postgres.psql(f"select count(*) from {table} where run_uuid = '{run_id}'",
                            database=DATABASE).stdout
        counts[table] = int(out.strip())
    return counts


def points(count: int, keys: int = 10) -> list[MetricRecord]:
    return [MetricRecord(f"m{i % keys}", float(i) / 7, T0 + i, i // keys) for i in range(count)]


def test_a_chunk_is_stored_as_log_batch_would_store_it(agentnn_server, postgres):
    run_id = new_run(agentnn_server)
    records = [ParamRecord("lr", "0.001"), TagRecord("team", "a"), *points(25_000),
               TagRecord("team", "b")]

    status, answer = post(agentnn_server, run_id, transfer.encode(run_id, records))

    assert status == 200, answer
    assert answer["metrics"] == 25_000
    assert rows(postgres, run_id) == {"metrics": 25_000, "latest_metrics": 10, "params": 1,
                                      "tags": 1 + rows_of_mlflow_tags(postgres, run_id)}
    run = ts_client(agentnn_server).get_run(run_id)
    assert run.data.params == {"lr": "0.001"}
    assert run.data.tags["team"] == "b"
    assert run.data.metrics["m9"] == pytest.approx(24_999 / 7)


def rows_of_mlflow_tags(postgres, run_id: str) -> int:
    """Tags MLflow set itself at create_run (user, source, run name...)."""
    out = postgres.psql(f"select count(*) from tags where run_uuid = '{run_id}' "
                        "and key like 'mlflow.%'", database=DATABASE).stdout
    return int(out.strip())


def test_a_resent_chunk_stores_no_point_twice(agentnn_server, postgres):
    run_id = new_run(agentnn_server)
    body = transfer.encode(run_id, points(5_000))

    first = post(agentnn_server, run_id, body)
    second = post(agentnn_server, run_id, body)

    assert first[0] == second[0] == 200
    assert rows(postgres, run_id)["metrics"] == 5_000
    history = ts_client(agentnn_server).get_metric_history(run_id, "m0")
    assert len(history) == 500


def test_gzip_bodies_are_taken_too(agentnn_server, postgres):
    run_id = new_run(agentnn_server)
    payload = zlib.decompress(transfer.encode(run_id, points(100)))

    status, answer = post(agentnn_server, run_id, gzip.compress(payload), encoding="gzip")

    assert status == 200, answer
    assert rows(postgres, run_id)["metrics"] == 100


def test_a_read_only_user_gets_403_and_nothing_is_written(agentnn_server, postgres):
    run_id = new_run(agentnn_server)

    status, answer = post(agentnn_server, run_id, transfer.encode(run_id, points(100)),
                          user=ts.RITA, password=ts.RITA_PASSWORD)

    assert status == 403
    assert answer["error_code"] == "PERMISSION_DENIED"
    assert rows(postgres, run_id)["metrics"] == 0


def test_a_wrong_password_gets_401(agentnn_server):
    run_id = new_run(agentnn_server)
    token = base64.b64encode(f"{ts.ALICE}:{ts.WRONG_PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        agentnn_server.url + transfer.chunks_path(run_id),
        data=transfer.encode(run_id, points(10)), method="POST",
        headers={"Authorization": f"Basic {token}", "Content-Encoding": "deflate"})

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)

    assert refused.value.code == 401


def test_a_changed_param_refuses_the_whole_request(agentnn_server, postgres):
    run_id = new_run(agentnn_server)
    assert post(agentnn_server, run_id, transfer.encode(run_id, [ParamRecord("lr", "1")]))[0] == 200

    status, answer = post(agentnn_server, run_id,
                          transfer.encode(run_id, [*points(3_000), ParamRecord("lr", "2")]))

    assert status == 400
    assert answer["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "lr" in answer["message"]
    assert rows(postgres, run_id)["metrics"] == 0


# --- fuzz: whatever a body holds, one answer, and all of it stored or none of it -----------


def _header(run_id: str) -> bytes:
    return json.dumps({"format": 2, "run_id": run_id}).encode() + b"\n"


def _wrong_crc(run_id: str, records: list) -> bytes:
    line = encode_chunk(records)
    return zlib.compress(_header(run_id) + b"%08x" % ((int(line[:8], 16) + 1) % 2**32)
                         + line[8:])


def _flipped(run_id: str, records: list, position: int) -> bytes:
    payload = bytearray(_header(run_id) + encode_chunk(records))
    payload[position % len(payload)] ^= 0x01
    return zlib.compress(bytes(payload))


def _crc_line(payload: bytes) -> bytes:
    """A chunk line whose checksum is right, whatever the payload."""
    return b"%08x " % zlib.crc32(payload) + payload + b"\n"


def _bodies(run_id: str, foreign: str):
    """(body, encoding) pairs: valid ones and the ways a body can be wrong."""
    metric = st.builds(
        MetricRecord, key=st.sampled_from(["loss", "acc", "lr/step", "m 1"]),
        value=st.floats(allow_nan=False, allow_infinity=False, width=64),
        timestamp=st.integers(0, 2**41), step=st.integers(-2**31, 2**31))
    entry = st.sampled_from(["a", "b", "c"])
    record = st.one_of(metric, metric, st.builds(TagRecord, entry, st.text(max_size=5)),
                       st.builds(ParamRecord, entry, st.just("1")))
    records = st.lists(record, min_size=1, max_size=300)
    bad_key = st.builds(MetricRecord, st.just("bad key?!"), st.just(1.0), st.just(T0),
                        st.just(0))
    return st.one_of(
        records.map(lambda r: (transfer.encode(run_id, r), "deflate")),
        records.map(lambda r: (transfer.encode(foreign, r), "deflate")),
        records.map(lambda r: (_wrong_crc(run_id, r), "deflate")),
        st.tuples(records, st.integers(0, 10**6)).map(
            lambda a: (_flipped(run_id, a[0], a[1]), "deflate")),
        st.tuples(records, st.integers(1, 200)).map(
            lambda a: (transfer.encode(run_id, a[0])[:-a[1]], "deflate")),
        st.tuples(records, bad_key).map(
            lambda a: (transfer.encode(run_id, [*a[0], a[1]]), "deflate")),
        records.map(lambda r: (zlib.compress(_header(run_id) + encode_chunk(
            [*r, EndRecord("FINISHED", T0)])), "deflate")),
        records.map(lambda r: (zlib.compress(_header(run_id) + encode_chunk(r)), "br")),
        records.map(lambda r: (_header(run_id) + encode_chunk(r), "deflate")),
        st.integers(1, 50_000).map(lambda depth: (zlib.compress(_header(run_id) + _crc_line(
            b"[" * depth + b"]" * depth)), "deflate")),
        st.binary(max_size=300).map(lambda b: (b, "deflate")),
        st.binary(max_size=300).map(lambda b: (zlib.compress(b), "deflate")),
    )


@pytest.fixture(scope="module")
def fuzz_run(agentnn_server):
    return new_run(agentnn_server)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_any_body_is_stored_whole_or_refused_with_nothing_written(
    agentnn_server, postgres, fuzz_run, data,
):
    body, encoding = data.draw(_bodies(fuzz_run, uuid.uuid4().hex))
    before = rows(postgres, fuzz_run)
    stored_before = stored_points(postgres, fuzz_run)

    status, answer = post(agentnn_server, fuzz_run, body, encoding=encoding)

    after = rows(postgres, fuzz_run)
    if status == 200:
        sent = _decoded(body, fuzz_run)
        expected = stored_before | {(m.key, m.value, m.timestamp, m.step) for m in sent
                                    if type(m) is MetricRecord}
        assert stored_points(postgres, fuzz_run) == expected
    else:
        assert 400 <= status < 500, answer
        assert answer["error_code"] and answer["message"]
        assert after == before
        assert stored_points(postgres, fuzz_run) == stored_before


def _decoded(body: bytes, run_id: str) -> list:
    return transfer.decode(zlib.decompress(body), run_id)


def stored_points(postgres, run_id: str) -> set[tuple[str, float, int, int]]:
    out = postgres.psql(
        "select key, value::text, timestamp, step from metrics "
        f"where run_uuid = '{run_id}'", database=DATABASE).stdout
    found = set()
    for line in out.splitlines():
        key, value, timestamp, step = line.split("|")
        found.add((key, float(value), int(timestamp), int(step)))
    return found


def test_float_values_round_trip_exactly(agentnn_server, postgres):
    run_id = new_run(agentnn_server)
    values = [math.pi, 1e-300, -2.5e300, 0.1 + 0.2]
    records = [MetricRecord("x", v, T0 + i, i) for i, v in enumerate(values)]

    assert post(agentnn_server, run_id, transfer.encode(run_id, records))[0] == 200

    assert {value for _, value, _, _ in stored_points(postgres, run_id)} == set(values)


def test_an_oversized_body_gets_413_and_nothing_is_written(agentnn_server, postgres):
    from agentnn.server.ingest import MAX_BODY_BYTES, MAX_RECORDS

    run_id = new_run(agentnn_server)
    too_many = transfer.encode(run_id, points(MAX_RECORDS + 1))
    too_big = too_many + b"\0" * (MAX_BODY_BYTES + 1 - len(too_many))

    for body in (too_many, too_big):
        status, answer = post(agentnn_server, run_id, body)

        assert status == 413
        assert answer["error_code"] == "BAD_REQUEST"
        assert "limits" in answer["message"]
    assert rows(postgres, run_id)["metrics"] == 0
