"""ModelManager.set_alias / delete_alias: promotion by alias, moved or removed."""

from __future__ import annotations

import pytest

from agentnn.errors import InputError, NotFoundError
from agentnn.sdk.nn_models import ModelManager


@pytest.fixture
def two_versions(populated_copy):
    manager = ModelManager(populated_copy["uri"])
    manager.register_model(populated_copy["with_model"], "agent-router", alias="champion")
    manager.register_model(populated_copy["with_model"], "agent-router")
    return manager


def test_an_alias_moves_from_one_version_to_another(two_versions):
    moved = two_versions.set_alias("agent-router", "champion", version=2)
    assert moved.version == 2 and moved.aliases == ["champion"]
    by_version = {v.version: v.aliases for v in two_versions.list_versions("agent-router")}
    assert by_version == {2: ["champion"], 1: []}


def test_a_deleted_alias_is_gone_and_the_version_stays(two_versions):
    two_versions.set_alias("agent-router", "challenger", version=2)
    two_versions.delete_alias("agent-router", "challenger")
    versions = two_versions.list_versions("agent-router")
    assert [v.version for v in versions] == [2, 1]
    assert all("challenger" not in v.aliases for v in versions)


def test_unknown_names_versions_and_aliases_are_not_found_errors(two_versions):
    with pytest.raises(NotFoundError, match="registered model 'nobody' not found"):
        two_versions.set_alias("nobody", "champion", version=1)
    with pytest.raises(NotFoundError, match="model version 'agent-router/9' not found"):
        two_versions.set_alias("agent-router", "champion", version=9)
    with pytest.raises(NotFoundError, match="alias 'agent-router@ghost' not found"):
        two_versions.delete_alias("agent-router", "ghost")


def test_a_numeric_alias_is_refused_because_it_reads_as_a_version(two_versions):
    with pytest.raises(InputError, match="reserved or ambiguous"):
        two_versions.set_alias("agent-router", "3", version=1)
