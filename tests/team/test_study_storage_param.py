"""A search on a PostgreSQL study storage says where its study lives, without the password."""

from __future__ import annotations

import team_servers as ts


def test_the_storage_param_keeps_host_and_database_and_hides_only_the_password(
    postgres, workdir, store_uri
):
    from agentnn.data import build_interaction_dataset, synthesize_interactions
    from agentnn.mlflow_integration import ExperimentTracker
    from agentnn.nn_models import dynamic_architecture as da

    storage = postgres.create_database("optuna_storage_param")
    tracker = ExperimentTracker(da.EXPERIMENT, tracking_uri=store_uri)
    data = build_interaction_dataset(synthesize_interactions(120, n_agents=2, seed=0), seed=0)

    result = da.train({"n_trials": 1, "epochs": 1, "max_reshapes": 0}, data, tracker=tracker,
                      study="storage-param", storage=storage)

    params = tracker.client.get_run(result.run_id).data.params
    assert params["storage"] == (
        f"postgresql://{ts.PG_ROLE}:***@127.0.0.1:{postgres.port}/optuna_storage_param")
    assert ts.PG_PASSWORD not in " ".join(params.values())
