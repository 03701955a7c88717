"""`agentnn model sync`: send what run journals still hold to the store, in the foreground."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from agentnn.cli import console

WAIT_POLL = 0.2  # seconds between checks while a background writer does the sending


def sync(
    timeout: Annotated[
        float, typer.Option(help="Seconds to keep retrying a store that does not answer.")
    ] = 60.0,
) -> None:
    """Send every unsent record in the local run journals to the store (after a crash or outage)."""
    from pathlib import Path

    from agentnn import config
    from agentnn.mlflow_integration import journal as journal_io
    from agentnn.mlflow_integration import writer

    journal_dir = Path(config.resolve().journal_dir.value)
    journals = sorted(journal_dir.glob(f"*{journal_io.JOURNAL_SUFFIX}"))
    journals = [j for j in journals if not j.name.endswith(journal_io.REJECTED_SUFFIX)]
    if not journals:
        print(f"nothing to send: no run journals in {journal_dir}")
        return
    sent = writer.forward_all(journal_dir, once=True, retry_limit=timeout)
    if sent < 0:  # a background writer holds the folder: wait for it instead
        deadline = time.monotonic() + timeout
        while any(journal_io.unsent_bytes(j) for j in journals) and time.monotonic() < deadline:
            time.sleep(WAIT_POLL)
    left = [j for j in journals if journal_io.unsent_bytes(j)]
    if left:
        console.error_line(
            f"{len(left)} journal(s) in {journal_dir} could not be sent yet; is the store up?"
        )
        raise typer.Exit(1)
    count = f"{sent} records" if sent >= 0 else "the records (a background writer sent them)"
    print(f"sent {count} from {len(journals)} journal(s) in {journal_dir}")
    rejected = sorted(journal_dir.glob(f"*{journal_io.REJECTED_SUFFIX}"))
    if rejected:
        console.warn_line(f"the store refused records kept in: {', '.join(map(str, rejected))}")
