"""A trainer host whose cable is pulled in the middle of a run: every point arrives, once."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from multihost_helpers import PYTHON, finish, start_on, wait_for
from team_helpers import assert_no_secret

CUT = 7.0  # seconds the cable stays out: longer than the writer's send interval (5 s)
BEFORE, AFTER = 200, 200  # steps logged before the cut and after the cable is back

TRAINER = """
import sys, time
from pathlib import Path
from agentnn.mlflow_integration import ExperimentTracker

experiment, before, after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out, back = Path("cable-out"), Path("cable-back")
with ExperimentTracker(experiment).start_run(params={"host": "trainer1"}) as run:
    step = 0
    def log():
        global step
        run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 1000}, step=step)
        step += 1
    for _ in range(before):
        log()
    print(run.run_id, flush=True)
    while not out.exists():  # until the server has some of it
        time.sleep(0.05)
    while not back.exists():  # logging on while the cable is out
        log()
        time.sleep(0.01)
    for _ in range(after):
        log()
print(run.run_id, step, flush=True)
"""


@pytest.mark.parametrize("app", ["basic-auth", "agentnn"])
def test_a_cable_pulled_mid_run_loses_no_point_and_sends_none_twice(
    site, app: str, request: pytest.FixtureRequest, tmp_path: Path
):
    url = site.url if app == "basic-auth" else request.getfixturevalue("agentnn_app")
    database = "mlflow_tracking" if app == "basic-auth" else "agentnn_tracking"
    trainer = site.trainers[0]
    experiment = f"cable-{uuid.uuid4().hex[:8]}"
    workdir = tmp_path / "trainer1"
    process = start_on(trainer, [PYTHON, "-c", TRAINER, experiment, str(BEFORE), str(AFTER)],
                       workdir, site.tracking_env(url))
    assert process.stdout is not None
    started = process.stdout.readline().strip()
    assert started, finish(process)[1]
    wait_for(lambda: arrived(site, database, started) > 0,
             what="the first points reached the server")
    site.network.cut("trainer1")
    arrived_before_cut = arrived(site, database, started)
    (workdir / "cable-out").touch()
    try:
        time.sleep(CUT)
    finally:
        site.network.plug("trainer1")
    (workdir / "cable-back").touch()
    out, err = finish(process)

    assert process.returncode == 0, err
    assert_no_secret(out + err, "trainer's output")
    run_id, steps = out.split()[0], int(out.split()[1])
    assert steps > BEFORE + AFTER  # some were logged while the cable was out
    assert arrived_before_cut < 2 * steps  # the cut came in the middle of the sending
    rows = site.sql(f"select key, step, count(*) from metrics where run_uuid = '{run_id}' "
                    "group by key, step", database)
    counts = {(key, int(step)): int(count) for key, step, count in rows}
    assert sorted(counts) == sorted((key, step) for key in ("acc", "loss")
                                    for step in range(steps))
    assert set(counts.values()) == {1}
    ((status,),) = site.sql(f"select status from runs where run_uuid = '{run_id}'", database)
    assert status == "FINISHED"


def arrived(site, database: str, run_id: str) -> int:
    """Metric rows the server holds for the run."""
    ((count,),) = site.sql(f"select count(*) from metrics where run_uuid = '{run_id}'",
                           database)
    return int(count)
