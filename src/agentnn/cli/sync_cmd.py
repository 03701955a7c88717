"""`agentnn model sync`: send what run journals still hold to the store, in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer

from agentnn.cli import console


def sync(
    timeout: Annotated[
        float, typer.Option(help="Seconds to keep retrying a store that does not answer.")
    ] = 60.0,
    tracking_uri: Annotated[
        str | None, typer.Option("--tracking-uri", help="Store to resolve the settings with, "
                                 "as in every model command; each journal still goes to the "
                                 "store it was written for.", show_default=False)
    ] = None,
) -> None:
    """Send every unsent record in the local run journals to the store (after a crash or outage).

    A damaged journal or chunk is set aside (named) and the rest still sent; a run whose
    training process is gone without ending it is set KILLED.
    """
    from pathlib import Path

    from agentnn import config
    from agentnn.mlflow_integration.writer.owner import sync_journals

    journal_dir = Path(config.resolve(tracking_uri).journal_dir.value)
    report = sync_journals(journal_dir, timeout)
    for line in report.events:
        console.warn_line(line)
    for line in report.waiting:
        console.message(line)
    if report.journals == 0 and not report.damaged:
        console.message(f"nothing to send: no run journals in {journal_dir}")
        return
    if report.unsent:
        reason = f" ({report.store_error})" if report.store_error else ""
        console.error_line(
            f"{len(report.unsent)} journal(s) in {journal_dir} could not be sent yet: the store "
            f"did not answer{reason}; run `agentnn model sync` again once it is up"
        )
        raise typer.Exit(1)
    count = (f"{report.sent} records" if report.sent is not None
             else "the records (a background writer sent them; see its writer.log)")
    console.message(f"sent {count} from {report.journals} journal(s) in {journal_dir}")
    if report.damaged:
        console.warn_line(
            f"damaged journal data is kept apart in: {', '.join(map(str, report.damaged))}"
        )
    if report.rejected:
        console.warn_line(
            f"the store refused records kept in: {', '.join(map(str, report.rejected))}"
        )
