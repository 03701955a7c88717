"""The per-run journal: an append-only local file that holds every record until the store has it.

Format version 2, ``<journal_dir>/<run_id>.<ns>.jsonl``:

- line 1, the *header*, a JSON object::

      {"format": 2, "run_id": ..., "tracking_uri": ..., "created": <ms>,
       "process": {"host": ..., "pid": ..., "start": <the process's start time, or null>}}

  ``process`` names the training process that writes the journal. Its start time (from
  ``/proc/<pid>/stat``) tells a live writer from another process that got the same pid later.
- every further line, a *chunk*: ``<crc32 of the JSON, 8 hex digits> <JSON array of records>``,
  appended in one write. A chunk whose checksum, JSON or records do not check out is *damaged*;
  a last line without its newline is *torn* (a write in progress, or a crash in mid-write).

The records, one class each in :mod:`~agentnn.mlflow_integration.journal.records`, and their
JSON form (:meth:`to_json`)::

    ["m", key, value, timestamp_ms, step]      MetricRecord
    ["p", key, value]                          ParamRecord
    ["t", key, value]                          TagRecord
    ["end", status, end_time_ms, applied]      EndRecord (applied: the status is already set)

Version 1 journals (a header without ``format``, chunks without a checksum, no ``process``)
still replay; their training process is taken as gone, as no version-1 writer is left running.

The writer (a thread or a process) records how far it got in ``<run_id>.<ns>.cursor`` as
``"<byte offset> <index> <last metric time>"``: the byte offset of the first chunk not fully sent,
the index of the first record in it not sent, and the time of the last metric point sent (the end
time of a run found killed). A record is never dropped: it stays in the journal until the cursor
has moved past it, or it is set aside, whole, in ``<journal>.damaged`` (which no ``*.jsonl``
glob matches).

The training thread only appends to an in-memory deque (thread-safe, no lock); a daemon thread
moves the deque to the file every ``flush_interval`` seconds, so the training loop never waits on
disk or on the store. When the process's own writer thread serves the folder, each chunk is also
handed to it (:class:`Handoff`), so it does not read back and parse what was just written.

Modules: ``records`` (the four record kinds), ``process`` (which training process writes a
journal, and whether it lives), ``format`` (header, chunks, cursor, set-aside copies: reading and
checking the file), ``buffered`` (the training side: the in-memory queue, its flush thread and
the hand-off to this process's writer thread).

Imports: :mod:`agentnn.errors` and the standard library (plus orjson); never MLflow, the store
or the writer, so a journal can be written and read where MLflow is not imported.
"""
