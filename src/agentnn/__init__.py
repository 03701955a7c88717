"""agentnn: train the networks of an agent-routing system and track everything in MLflow.

The package imports nothing heavy at start-up; MLflow and PyTorch load when first used.
"""

__version__ = "0.1.0"
