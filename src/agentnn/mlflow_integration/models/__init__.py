"""Model files: the safe format, the builders that may rebuild a module, and the one loader.

- ``format``: safetensors weights plus a JSON spec, written and read without unpickling code;
- ``builders``: the registry of functions a model file may name (name -> function);
- ``loading``: the one loader behind both ``ModelManager`` classes (cache, sha256 check, signature);
- ``mlflow_pytorch``: models plain MLflow logged (``pt2``, and pickles only when allowed).

Imports: the store layer, :mod:`agentnn.errors`; never the trainers, the SDK or the CLI.
"""
