"""`agentnn data …`: synthetic interaction logs and data checks.

The data layer loads inside each command body, so ``agentnn --help`` never imports numpy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agentnn.cli import console

app = typer.Typer(help="Make and check interaction-log data.", no_args_is_help=True)

DEFAULT_RECORDS = 2000
DEFAULT_AGENTS = 4


@app.command()
def synth(
    path: Annotated[
        Path | None, typer.Argument(metavar="FILE", help="JSON Lines file to write.",
                                    show_default=False)
    ] = None,
    records: Annotated[int, typer.Option(help="Number of interaction records.", min=1)] = (
        DEFAULT_RECORDS
    ),
    agents: Annotated[int, typer.Option(help="Number of agents, 2 to 8.", min=2, max=8)] = (
        DEFAULT_AGENTS
    ),
    seed: Annotated[int, typer.Option(help="Seed; the same seed writes the same file.")] = 0,
    output: Annotated[
        str, typer.Option("--output", "-o", metavar="table|json",
                          help="table prints one line; json prints what was written.")
    ] = "table",
) -> None:
    """Write a synthetic interaction log where each agent is good at some domains and tasks."""
    from agentnn.cli.grammar import output_or_old_file

    output, old_file = output_or_old_file(output, ("table", "json"),
                                          "agentnn data synth {file}")
    target = path or old_file
    if target is None:
        raise typer.BadParameter("name the file to write, e.g. agentnn data synth logs.jsonl",
                                 param_hint="FILE")
    from agentnn.data.records import write_interactions
    from agentnn.data.synthetic import synthesize_interactions

    log = synthesize_interactions(records, agents, seed)
    written = write_interactions(log, target)
    if output == "json":
        console.print_json({"file": str(written), "records": len(log), "agents": agents,
                            "seed": seed})
    else:
        console.message(f"wrote {len(log)} records ({agents} agents, seed {seed}) to {written}")


@app.command()
def check(
    path: Annotated[Path, typer.Argument(
        exists=True, help="JSON Lines interaction log to validate.")],
    output: Annotated[str, typer.Option("--output", "-o", metavar="table|json|csv",
                                        help="table, json or csv.")] = "table",
) -> None:
    """Validate every line of a log and print its counts, or the bad lines in one error."""
    from agentnn.data.records import load_interactions, records_sha256
    from agentnn.errors import DataError

    if output not in console.OUTPUT_FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(console.OUTPUT_FORMATS)}",
                                 param_hint="--output")
    log = load_interactions(path)
    if not log:
        raise DataError(f"{path}: holds no records", path=str(path))
    per_agent: dict[str, list[bool]] = {}
    for record in log:
        per_agent.setdefault(record.chosen_agent, []).append(record.success)
    by_agent = {
        agent: {"records": len(outcomes), "success_rate": round(sum(outcomes) / len(outcomes), 4)}
        for agent, outcomes in sorted(per_agent.items())
    }
    summary = {
        "file": str(path),
        "records": len(log),
        "agents": len(per_agent),
        "success_rate": round(sum(r.success for r in log) / len(log), 4),
        "domains": len({r.domain for r in log if r.domain is not None}),
        "sha256": records_sha256(log),
        "per_agent": by_agent,
    }
    if output == "table":
        console.print_table(  # the path in the title: a long one folds there, not in a row
            str(path), ["records", "agents", "success rate", "domains"],
            [[summary["records"], summary["agents"], summary["success_rate"],
              summary["domains"]]],
        )
    rows = [[agent, row["records"], row["success_rate"]] for agent, row in by_agent.items()]
    console.print_table("per agent", ["agent", "records", "success rate"], rows, output=output,
                        records=summary)
