"""`agentnn model plot`: metric curves as a PNG that decodes at the documented size."""

from __future__ import annotations


def test_plot_writes_a_png_of_800_by_500_pixels(cli, populated, workdir):
    import matplotlib.image

    target = workdir / "out" / "curves.png"
    result = cli("model", "plot", populated["lr_0.001"], populated["lr_0.1"], "--metric",
                 "val_loss", "-o", str(target), "--tracking-uri", populated["uri"])
    assert result.exit_code == 0, result.output
    image = matplotlib.image.imread(target)
    assert image.shape[:2] == (500, 800)
    assert image.std() > 0  # something was drawn


def test_plotting_a_metric_the_run_never_logged_is_a_user_error(cli, populated, workdir):
    result = cli("model", "plot", populated["lr_0.001"], "--metric", "f1",
                 "-o", str(workdir / "x.png"), "--tracking-uri", populated["uri"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: metric 'f1' not found")
    assert not (workdir / "x.png").exists()
