"""The `agentnn` command (Typer, Rich): parse the arguments, call one function, render the result.

- ``main``: the app, composed of one sub-app per noun; turns agentnn's errors into one line;
- ``model`` (with ``sync_cmd``), ``train``, ``data``, ``config_cmd``: the sub-apps;
- ``console``: everything the command prints (styles, tables, JSON, error lines).

Imports: :mod:`agentnn.sdk` (its public ``nn_models`` module only), the trainers (imported by
name from ``train``'s table, and their config check), :mod:`agentnn.quickstart`,
:mod:`agentnn.data`, :mod:`agentnn.config`, :mod:`agentnn.errors`, and two entry points below the
SDK (``Store`` for ``config --check``, ``sync_journals`` for ``model sync``); never MLflow or
torch itself, and everything but Typer inside command bodies, so ``agentnn --help`` stays fast.
Nothing imports this package.
"""
