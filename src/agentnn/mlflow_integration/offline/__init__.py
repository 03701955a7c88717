"""Offline fallback and push: runs whose server did not answer, and copying runs between stores.

- ``fallback``: at run start, a tracking server that does not answer sends the run to the
  embedded store, tagged pending;
- ``push``: copy runs (and their models and registered versions) from one store to another,
  whole and exactly once; pending runs the writer pushes by itself;
- ``model_push``: copy a registered model whole (every version's run, in version order, so the
  numbers are kept where they can be), for ``agentnn model push --model``.

Imports: the store layer, :mod:`agentnn.config`, :mod:`agentnn.errors`; never the writer or the
tracker (they call in here).
"""
