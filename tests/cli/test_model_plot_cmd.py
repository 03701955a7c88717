"""`agentnn model plot`: metric curves as a PNG that decodes at the documented size."""

from __future__ import annotations


def test_plot_writes_a_png_of_800_by_500_pixels(cli, populated, workdir):
    import matplotlib.image

    target = workdir / "out" / "curves.png"
    result = cli("model", "plot", populated["lr_0.001"], populated["lr_0.1"], "--metric",
                 "val_loss", "--out", str(target), "--tracking-uri", populated["uri"])
    assert result.exit_code == 0, result.output
    image = matplotlib.image.imread(target)
    assert image.shape[:2] == (500, 800)
    assert image.std() > 0  # something was drawn


def test_plot_dash_o_is_the_format_and_the_old_file_spelling_still_writes(cli, populated,
                                                                          workdir):
    import json

    new = cli("model", "plot", populated["lr_0.001"], "--metric", "val_loss", "--out",
              str(workdir / "new.png"), "-o", "json", "--tracking-uri", populated["uri"])
    assert new.exit_code == 0, new.output
    assert json.loads(new.stdout) == {"file": str(workdir / "new.png")}
    old = cli("model", "plot", populated["lr_0.001"], "--metric", "val_loss", "-o",
              str(workdir / "old.png"), "--tracking-uri", populated["uri"])
    assert old.exit_code == 0, old.output
    assert (workdir / "old.png").stat().st_size > 0
    assert f"write --out {workdir / 'old.png'}" in old.stderr


def test_plotting_a_metric_the_run_never_logged_is_a_user_error(cli, populated, workdir):
    result = cli("model", "plot", populated["lr_0.001"], "--metric", "f1",
                 "--out", str(workdir / "x.png"), "--tracking-uri", populated["uri"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: metric 'f1' not found")
    assert not (workdir / "x.png").exists()


def test_plot_draws_a_long_run_downsampled_with_log_scale_and_smoothing(cli, store_uri, workdir):
    import matplotlib.image
    import mlflow
    from mlflow.entities import Metric

    client = mlflow.MlflowClient(store_uri)
    run_id = client.create_run("0", run_name="long $run [/x]").info.run_id
    metrics = [Metric("loss", 2.0 / (step + 1), 1_700_000_000_000 + step, step)
               for step in range(5000)]
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start:start + 1000])
    target = workdir / "long.png"
    result = cli("model", "plot", run_id, "--metric", "loss", "--out", str(target),
                 "--max-points", "200", "--log-scale", "--smooth", "0.6",
                 "--tracking-uri", store_uri)
    assert result.exit_code == 0, result.output
    image = matplotlib.image.imread(target)
    assert image.shape[:2] == (500, 800) and image.std() > 0


def test_plot_refuses_a_budget_below_four_points(cli, populated, workdir):
    result = cli("model", "plot", populated["lr_0.001"], "--metric", "val_loss",
                 "--max-points", "3", "--out", str(workdir / "x.png"),
                 "--tracking-uri", populated["uri"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: max_points must be at least 4")
