"""The pyfunc flavour: plain mlflow.pyfunc.load_model serves an agentnn model."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from model_helpers import expected_outputs


def test_plain_mlflow_pyfunc_load_model_predicts_like_the_module(logged, store_uri):
    mlflow.set_tracking_uri(store_uri)
    pyfunc = mlflow.pyfunc.load_model("models:/router/1")
    want = expected_outputs(logged.module, logged.inputs)
    got = pyfunc.predict(logged.inputs)
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-6)


def test_pyfunc_accepts_a_dataframe_of_features(logged, store_uri):
    mlflow.set_tracking_uri(store_uri)
    pyfunc = mlflow.pyfunc.load_model(logged.info.model_uri)
    got = pyfunc.predict(pd.DataFrame(logged.inputs))
    np.testing.assert_allclose(got["success"],
                               expected_outputs(logged.module, logged.inputs)["success"], rtol=1e-6)
