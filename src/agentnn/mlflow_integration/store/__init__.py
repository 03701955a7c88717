"""The store layer: every conversation with a tracking store starts here.

- ``client``: :class:`~agentnn.mlflow_integration.store.client.Store`, resolved settings turned
  into one MLflow client, one probe and one translation of MLflow's errors into agentnn's;
- ``classify``: what an error means (unreachable, refused credentials, not found…), the one
  place that reads MLflow's error codes, and the retry rule built on it;
- ``probe``: the one HTTP probe of a server, with the credentials MLflow's client would send;
- ``embedded``: the embedded SQLite store, created and upgraded once under a file lock.
- ``process_uri``: MLflow's own tracking URI for the process, set without importing MLflow.

Imports: :mod:`agentnn.config`, :mod:`agentnn.errors`, :mod:`agentnn.masking`; nothing above.
"""
