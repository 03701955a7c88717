"""Runtime model loading, where every load is a tracked run."""
