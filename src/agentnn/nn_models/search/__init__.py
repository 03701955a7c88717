"""The architecture search behind ``dynamic_architecture``: an Optuna study, one run per trial.

- ``config``: :class:`~agentnn.nn_models.search.config.ArchitectureSearchConfig`, the search
  space and how each trial trains;
- ``study``: the study's storage, names and the tags that tie trials to runs;
- ``network``: the searched network built from its JSON spec, and its surgery (grow, shrink);
- ``objective``: one trial (sample, train, reshape, prune, log) and how a study runs trials;
- ``leaderboard``: the trials ranked, logged on the parent run;
- ``workers`` and ``worker``: worker processes that share one study.

Imports: :mod:`agentnn.nn_models.training`, the tracker, the journal's process check (a
study's worker that is gone), :mod:`agentnn.errors`; never the trainer module
(``dynamic_architecture`` imports from here).
"""
