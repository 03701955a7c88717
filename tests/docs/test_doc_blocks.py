"""Every fenced block of README.md and docs/ runs as written (team-server blocks: tests/team)."""

from __future__ import annotations

from pathlib import Path

import doc_blocks as db
import pytest

PAGES = db.pages()


def _id(page: Path) -> str:
    return str(page.relative_to(db.REPO))


def test_every_block_is_run_shown_or_skipped_with_a_reason() -> None:
    problems = []
    for page in PAGES:
        try:
            db.blocks(page)
        except ValueError as error:
            problems.append(str(error))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_page_blocks_run(page: Path, tmp_path: Path) -> None:
    found = db.blocks(page)
    db.count(found)
    with db.PageRun(tmp_path, db.clean_environment()) as runner:
        for block in found:
            if block.runs and block.marker != db.TEAM_SERVER:
                runner.run(block)


def test_the_docs_run_blocks() -> None:
    """A collector that found nothing would pass every page: the pages do hold runnable code."""
    runnable = [b for page in PAGES for b in db.blocks(page) if b.runs]
    print(f"{len(runnable)} runnable blocks in {len(PAGES)} pages")
    assert len(runnable) >= 30
