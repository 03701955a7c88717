"""agentnn: train the networks of an agent-routing system and track everything in MLflow.

One folder per concern (docs/architecture.md draws the map): ``cli`` (the command) on top;
``sdk``, ``nn_models`` (the trainers) and ``managers`` (runtime loading) below it; then
``mlflow_integration`` (tracking, journal, writer, store, models) and ``data``; then
``config``, ``errors``, ``masking`` and ``heap``. Imports only point down that list, as the
import contracts in pyproject.toml check.

The package imports nothing heavy at start-up; MLflow and PyTorch load when first used.
"""

__version__ = "0.1.0"  # the one place the version is written: pyproject.toml reads it from here
