"""ModelManager.list_runs: filters, order, limits, paging, deleted runs, bad queries."""

from __future__ import annotations

import math

import pytest

from agentnn.errors import InvalidQueryError, NotFoundError
from agentnn.sdk.nn_models import ModelManager

BOTH_READERS = pytest.mark.parametrize(
    "direct_reads", [True, False], ids=["sqlite-direct", "mlflow-client"]
)


@BOTH_READERS
def test_order_by_metric_puts_nan_then_missing_last(populated, direct_reads):
    manager = ModelManager(populated["uri"], direct_reads=direct_reads)
    names = [r.run_name for r in manager.list_runs("routing", order_by="metrics.val_loss ASC")]
    assert names[:3] == ["failed-run", "lr-0.01", "lr-0.001"]
    assert names[-2:] == ["nan-run", "parent"]  # NaN after every number, no metric at the end
    assert math.isnan(manager.list_runs("routing", order_by="metrics.val_loss ASC")[-2]
                      .metrics["val_loss"])


@BOTH_READERS
@pytest.mark.parametrize(("filter_string", "expected"), [
    ("params.lr = '0.01'", {"lr-0.01"}),
    ("metrics.val_loss < 0.35", {"lr-0.01", "lr-0.001", "failed-run"}),
    ("metrics.val_loss != 0.3 and params.optimizer = 'adamw'", {"lr-0.01", "lr-0.1"}),
    ("attributes.status = 'FAILED'", {"failed-run"}),
    ("tags.`mlflow.parentRunId` != ''", {"child-0", "child-1"}),
    ("attributes.run_name = 'nan-run'", {"nan-run"}),
    ("params.lr LIKE '0.0%'", {"lr-0.01", "lr-0.001", "failed-run"}),  # MLflow answers this one
])
def test_filters_select_the_runs_mlflow_would(populated, direct_reads, filter_string, expected):
    runs = ModelManager(populated["uri"], direct_reads=direct_reads).list_runs(
        "routing", filter=filter_string
    )
    assert {run.run_name for run in runs} == expected


@BOTH_READERS
def test_deleted_runs_are_listed_only_when_asked(populated, direct_reads):
    manager = ModelManager(populated["uri"], direct_reads=direct_reads)
    assert populated["deleted"] not in {r.run_id for r in manager.list_runs("routing")}
    with_deleted = {r.run_id: r for r in manager.list_runs("routing", include_deleted=True)}
    assert with_deleted[populated["deleted"]].lifecycle_stage == "deleted"


@BOTH_READERS
def test_runs_default_to_newest_first_and_respect_the_limit(populated, direct_reads):
    runs = ModelManager(populated["uri"], direct_reads=direct_reads).list_runs("routing", limit=3)
    assert len(runs) == 3
    starts = [run.start_time_ms for run in runs]
    assert starts == sorted(starts, reverse=True)


def test_mlflow_pages_are_followed_until_every_run_is_listed(populated):
    paged = ModelManager(populated["uri"], direct_reads=False, page_size=3)
    every = paged.list_runs(limit=None)
    assert len(every) == 10  # 8 in routing + 2 in the unicode experiment, over four pages
    assert len({run.run_id for run in every}) == 10
    assert len(paged.list_runs("routing", limit=5)) == 5


def test_runs_keep_unicode_names_params_and_parent_links(populated):
    manager = ModelManager(populated["uri"])
    (unicode_run,) = manager.list_runs("Übung ✓ 路由", filter="metrics.val_loss > 0")
    assert unicode_run.run_name == "ünïcödé run ✓"
    assert unicode_run.params == {"größe": "groß"}
    child = manager.list_runs("routing", filter="attributes.run_name = 'child-0'")[0]
    assert child.parent_run_id == populated["parent"]


def test_an_experiment_can_be_named_by_id(populated):
    by_id = ModelManager(populated["uri"]).list_runs(populated["routing_experiment"])
    assert len(by_id) == 8


@BOTH_READERS
def test_an_unknown_experiment_is_a_not_found_error(populated, direct_reads):
    with pytest.raises(NotFoundError, match="experiment 'no-such-experiment' not found"):
        ModelManager(populated["uri"], direct_reads=direct_reads).list_runs("no-such-experiment")


@BOTH_READERS
def test_a_bad_filter_is_an_invalid_query_error_naming_it(populated, direct_reads):
    with pytest.raises(InvalidQueryError, match="metrics.val_loss >>> 1"):
        ModelManager(populated["uri"], direct_reads=direct_reads).list_runs(
            "routing", filter="metrics.val_loss >>> 1"
        )


@BOTH_READERS
def test_a_bad_order_by_is_named_as_such_even_with_a_good_filter(populated, direct_reads):
    with pytest.raises(InvalidQueryError, match="bad order-by 'metrics.val_loss SIDEWAYS'"):
        ModelManager(populated["uri"], direct_reads=direct_reads).list_runs(
            "routing", filter="params.lr = '0.01'", order_by="metrics.val_loss SIDEWAYS"
        )
