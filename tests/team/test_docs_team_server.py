"""The documentation's team-server blocks run against the session's basic-auth server.

A block marked ``<!-- docs: team-server -->`` is run here rather than in tests/docs: with
``MLFLOW_TRACKING_URI`` naming the basic-auth `mlflow server` on PostgreSQL and alice's
credentials in ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``, in a fresh folder per page, python
blocks sharing one namespace per page as everywhere in the docs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import team_servers as ts

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
# tests/docs holds the one block reader
import doc_blocks as db

PAGES = [page for page in db.pages()
         if any(block.marker == db.TEAM_SERVER for block in db.blocks(page))]


def test_the_docs_have_team_server_blocks() -> None:
    assert PAGES, "no page has a <!-- docs: team-server --> block"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(db.REPO)))
def test_team_server_blocks_run(page: Path, auth_server, tmp_path: Path) -> None:
    env = db.clean_environment({
        "MLFLOW_TRACKING_URI": auth_server.url,
        "MLFLOW_TRACKING_USERNAME": ts.ALICE,
        "MLFLOW_TRACKING_PASSWORD": ts.ALICE_PASSWORD,
    })
    with db.PageRun(tmp_path, env) as runner:
        for block in db.blocks(page):
            if block.marker == db.TEAM_SERVER:
                runner.run(block)
