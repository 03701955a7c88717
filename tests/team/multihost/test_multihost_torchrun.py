"""`torchrun` on two trainer hosts, one process each: one job, one tracked run on the server."""

from __future__ import annotations

import json
from pathlib import Path

from multihost_helpers import PYTHON, finish, start_on
from team_helpers import assert_no_secret

RENDEZVOUS_PORT = "29517"  # on trainer1's address; the network is the test's own


def test_a_two_host_torchrun_job_is_one_run_on_the_server(site, tmp_path: Path):
    first, second = site.trainers
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"epochs": 1, "batch_size": 64}))
    result_file = tmp_path / "result.json"

    def node(rank: int):
        command = [
            PYTHON, "-m", "torch.distributed.run", "--nnodes=2", f"--node_rank={rank}",
            "--nproc_per_node=1", f"--master_addr={first.address}",
            f"--master_port={RENDEZVOUS_PORT}",
            "-m", "agentnn.nn_models.training_infrastructure", "--dataset", "digits",
            "--config", str(config), "--tracking-uri", site.url,
            "--result-file", str(result_file),
        ]
        host = (first, second)[rank]
        # gloo binds to the address of the host's one interface, not its host name's
        return start_on(host, command, tmp_path / host.namespace,
                        {**site.tracking_env(), "GLOO_SOCKET_IFNAME": "eth0"})

    nodes = [node(0), node(1)]
    outputs = [finish(process) for process in nodes]

    for process, (out, err) in zip(nodes, outputs):
        assert process.returncode == 0, out + err
        assert_no_secret(out + err, "torchrun's output")
    run_id = json.loads(result_file.read_text())["run_id"]
    runs = site.sql("select r.run_uuid, r.status from runs r join experiments e "
                    "on e.experiment_id = r.experiment_id "
                    "where e.name = 'distributed_training'")  # no other test trains it
    assert runs == [[run_id, "FINISHED"]]
    params = dict(site.sql(f"select key, value from params where run_uuid = '{run_id}'"))
    assert params["world_size"] == "2" and params["backend"] == "gloo"
    ((epochs_logged,),) = site.sql(f"select count(*) from metrics where run_uuid = '{run_id}' "
                                   "and key = 'val_loss'")
    assert epochs_logged == "1"
