"""Model files: the safe format, the builders that may rebuild a module, and the one loader.

- ``format``: safetensors weights plus a JSON spec, written and read without unpickling code;
- ``builders``: the registry of functions a model file may name (name -> function);
- ``loading``: the one loader behind both ``ModelManager`` classes (cache, sha256 check, signature);
- ``mlflow_pytorch``: models plain MLflow logged (``pt2``, and pickles only when allowed).

Imports: the store layer, :mod:`agentnn.errors`; never the trainers, the SDK or the CLI. The
registry names agentnn's own builder modules (``managers.builders``, the trainers) and imports
one by name only when a model file asks for its builder: data picks the module, not an import
statement, and only from that fixed list.
"""
