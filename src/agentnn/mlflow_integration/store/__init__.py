"""The store layer: every conversation with a tracking store starts here.

- ``client``: :class:`~agentnn.mlflow_integration.store.client.Store`, resolved settings turned
  into one MLflow client, one probe and one translation of MLflow's errors into agentnn's;
- ``embedded``: the embedded SQLite store, created and upgraded once under a file lock.

Imports: :mod:`agentnn.config`, :mod:`agentnn.errors`, :mod:`agentnn.masking`; nothing above.
"""
