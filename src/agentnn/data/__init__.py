"""Interaction logs: the record format, featurisation, synthetic data and loaders."""
