"""What a run carries besides its points: input checks, secret redaction, tags, run names.

- ``validation``: keys and values checked at the call site, in the training process;
- ``redaction``: params and tags that look like secrets become ``***``;
- ``context``: automatic tags (git, command line, host) and generated run names;
- ``queries``: the best-run search shared by the tracker and the SDK;
- ``datasets``: the short name of a run's data set (the ``agentnn.dataset`` tag).

Imports: :mod:`agentnn.errors` and the standard library; nothing that talks to a store.
"""
