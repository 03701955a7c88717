"""The writer: what moves journals into the store (natively or with ``log_batch``), and who
runs it.

One writer serves every journal in a folder (a file lock makes it the only one). It runs as a
thread of the training process that owns the folder (see
:mod:`~agentnn.mlflow_integration.writer.owner`) or as a process of its own at the lowest
priority (started when the thread cannot serve, to take over at the training process's exit, or
by hand). It retries with back-off while the store does not answer, and a writer process exits
once its parent process is gone and every journal is sent, or after a long idle spell.

What it does with a journal that is not simply "records to send" (each said in one line):

- a damaged chunk (checksum, JSON or a record does not check out) is set aside, whole, in
  ``<journal>.damaged``; the chunks around it are still sent;
- a torn last line is left for later while the journal's training process lives (it is still
  being written) and set aside once that process is gone (a crash cut it);
- a broken header sets the whole journal aside, named;
- a journal whose training process is gone without an end record: its run is set KILLED, with
  the time of its last metric point as end time.

A pass that sends nothing is idle: the writer sleeps or (``--once``) returns, so it never spins.
The writer (thread or process) is owned by
:class:`~agentnn.mlflow_integration.writer.owner.WriterProcess`.

Modules, in the order a point travels through them:

- ``owner``: :class:`~.owner.WriterProcess`, the one owner of a folder's writer (a thread of the
  training process, or a writer process), and :func:`~.owner.sync_journals` for ``agentnn model
  sync``;
- ``thread``: :class:`~.thread.WriterThread`, the writer as a daemon thread;
- ``loop``: :class:`~.loop.Writer`, the folder's loop (scan, send, back off, wake), its lock and
  log;
- ``forwarder``: :class:`~.forwarder.JournalForwarder`, one journal's records into batches, sent
  and confirmed in the cursor;
- ``sql_bulk``: the native bulk path into SQL stores (``log_batch`` everywhere else);
- ``daemon`` and ``__main__``: the writer process's entry point::

      python -m agentnn.mlflow_integration.writer <journal_dir> [--once]

Imports: the journal, the store layer, offline push (a writer also pushes fallen-back runs),
:mod:`agentnn.config`, :mod:`agentnn.errors` and :mod:`agentnn.heap`; never the tracker, the SDK
or the CLI.

Logging: the writer's lines are its own log, not the application's. They are logged at INFO on
this package's logger, which does not propagate, so a training script's terminal and logs never
fill with them, and written to ``writer.log`` beside the journals by the writer that runs
(:func:`~.loop.log_to_file`). To follow them elsewhere, add a handler to
``logging.getLogger("agentnn.mlflow_integration.writer")``.
"""

import logging

logging.getLogger(__name__).setLevel(logging.INFO)
logging.getLogger(__name__).propagate = False
