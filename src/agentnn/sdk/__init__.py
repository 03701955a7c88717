"""The SDK: plain-data access to experiments, runs and registered models."""
