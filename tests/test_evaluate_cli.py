"""`python -m vrnn.evaluate`: bounds per point and per sequence, VRNN and RNN alike, table or JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vrnn.datasets import load_eval_inks
from vrnn.evaluate import main
from vrnn.formats import write_ink
from vrnn.ink import Ink
from vrnn.model import VRNNConfig
from vrnn.train import TrainOptions, fit

ROOT = Path(__file__).resolve().parents[1]
SIZES = dict(hidden=16, mixtures=2, x_features=8, z_features=8, mlp=16)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A tiny VRNN and a tiny RNN-GMM, trained a few steps on synthetic lines and saved."""
    train = load_eval_inks("synthetic", split="train", synthetic_lines=8)
    valid = load_eval_inks("synthetic", split="valid", synthetic_lines=2)
    options = TrainOptions(max_steps=6, batch_size=8, max_len=60, eval_every=3, progress_bar=False)
    dirs = {}
    for kind, config in (("vrnn", VRNNConfig(latent=4, **SIZES)), ("rnn", VRNNConfig(model="rnn", **SIZES))):
        model = fit(train, valid, config=config, options=options)
        dirs[kind] = tmp_path_factory.mktemp(kind)
        model.save(dirs[kind], card=model.card)
    return dirs


def run(args, capsys):
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_vrnn_json_has_both_bounds_per_point_and_per_sequence(checkpoints, capsys):
    code, out, err = run(["--model", checkpoints["vrnn"], "--data", "synthetic", "--synthetic-lines", 3,
                          "--importance-samples", 4, "--json"], capsys)
    assert code == 0, err
    r = json.loads(out)
    assert r["model"] == "vrnn" and r["split"] == "test" and r["sequences"] == 3 and r["importance_samples"] == 4
    for bound in ("elbo", "iwae"):
        per_point, per_seq = r[f"{bound}_per_point"], r[f"{bound}_per_sequence"]
        assert per_point < 0 and per_seq * r["sequences"] == pytest.approx(per_point * r["points"], rel=1e-6)
    assert r["iwae_per_point"] >= r["elbo_per_point"] - 0.05  # K=4 samples of a tiny model: loose


def test_rnn_reports_its_exact_likelihood_under_both_keys(checkpoints, capsys):
    code, out, _ = run(["--model", checkpoints["rnn"], "--data", "synthetic", "--synthetic-lines", 3, "-k", 2,
                        "--json"], capsys)
    assert code == 0
    r = json.loads(out)
    assert r["model"] == "rnn" and r["iwae_per_point"] == r["elbo_per_point"]


def test_table_output(checkpoints, capsys):
    code, out, _ = run(["--model", checkpoints["vrnn"], "--data", "synthetic", "--synthetic-lines", 2, "-k", 2],
                       capsys)
    assert code == 0
    lines = out.splitlines()
    assert any(line.startswith("ELBO") for line in lines) and any(line.startswith("IWAE (K=2)") for line in lines)
    assert "per point" in out and "per sequence" in out and "split test" in out


def test_evaluates_real_uji_samples(checkpoints, capsys, uji_dir):
    code, out, err = run(["--model", checkpoints["vrnn"], "--data", uji_dir / "slice_0.txt", "--json"], capsys)
    assert code == 0, err
    r = json.loads(out)
    assert r["split"] == "all" and r["sequences"] > 0 and "iwae_per_point" not in r


@pytest.mark.parametrize("which", ["data", "model"])
def test_bad_inputs_exit_2_with_one_line(checkpoints, capsys, tmp_path, which):
    bad = tmp_path / "nothing-here"
    args = ["--model", bad if which == "model" else checkpoints["vrnn"],
            "--data", bad if which == "data" else "synthetic", "--synthetic-lines", 1]
    code, out, err = run(args, capsys)
    assert code == 2 and not out
    assert len(err.strip().splitlines()) == 1 and str(bad) in err


def test_file_splits_follow_the_training_writer_split(tmp_path):
    from vrnn.datasets import load_train_valid
    from vrnn.formats import write_ink

    inks = load_eval_inks("synthetic", split="train", synthetic_lines=12)
    write_ink(inks, tmp_path / "lines.json")
    train, valid = load_train_valid(str(tmp_path / "lines.json"))
    # validation and test are both held out of training, by writer (3 ways since data mixtures)
    assert [i.label for i in load_eval_inks(str(tmp_path / "lines.json"), split="valid")] == [i.label for i in valid]
    held_out = load_eval_inks(str(tmp_path / "lines.json"), split="test")
    assert held_out and len(train) + len(valid) + len(held_out) == 12
    assert not {i.writer for i in held_out} & {i.writer for i in train + valid}
    assert len(load_eval_inks(str(tmp_path / "lines.json"))) == 12


@pytest.mark.slow
def test_command_line_in_a_real_process(checkpoints):
    r = subprocess.run([sys.executable, "-m", "vrnn.evaluate", "--model", str(checkpoints["rnn"]), "--data",
                        "synthetic", "--synthetic-lines", "2", "--json"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"] == "rnn"


def test_the_evaluation_cli_does_not_load_the_trainer():
    code = "import sys, vrnn.evaluate; print(sorted(m for m in sys.modules if m.startswith('vrnn.train')))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_negative_importance_samples_exit_2_with_one_line(capsys):
    code, out, err = run(["--data", "synthetic", "-k", -1], capsys)
    assert code == 2 and not out and err.strip() == "error: --importance-samples must be >= 0"
    code, out, err = run(["--data", "synthetic", "--particles", -1], capsys)
    assert code == 2 and not out and err.strip() == "error: --particles must be >= 0"


def test_particles_add_the_particle_filter_bound(checkpoints, capsys):
    for kind in ("vrnn", "rnn"):
        code, out, err = run(["--model", checkpoints[kind], "--data", "synthetic", "--synthetic-lines", 3,
                              "--particles", 8, "-k", 8, "--json"], capsys)
        assert code == 0, err
        r = json.loads(out)
        assert r["particles"] == 8 and r["smc_per_sequence"] * 3 == pytest.approx(r["smc_per_point"] * r["points"])
        if kind == "rnn":  # no latent: the exact log-likelihood, like every other row
            assert r["smc_per_point"] == r["elbo_per_point"]
        else:
            assert r["smc_per_point"] >= r["elbo_per_point"] - 0.05 and r["resampled_per_sequence"] >= 0
    code, out, _ = run(["--model", checkpoints["vrnn"], "--data", "synthetic", "--synthetic-lines", 2, "-p", 4], capsys)
    assert code == 0 and any(line.startswith("SMC (P=4)") for line in out.splitlines()) and "resampled per ink" in out


def test_split_test_of_a_file_evaluates_the_writers_training_held_out(checkpoints, capsys, tmp_path):
    from vrnn.datasets import describe, holdout_split
    from vrnn.formats import write_ink

    inks = load_eval_inks("synthetic", split="train", synthetic_lines=30)
    write_ink(inks, tmp_path / "lines.json")
    for fractions in ((0.1, 0.1), (0.2, 0.3)):
        _, _, test = holdout_split(load_eval_inks(str(tmp_path / "lines.json")), valid_fraction=fractions[0],
                                   test_fraction=fractions[1])
        code, out, err = run(["--model", checkpoints["vrnn"], "--data", tmp_path / "lines.json", "--split", "test",
                              "--valid-fraction", fractions[0], "--test-fraction", fractions[1], "--json"], capsys)
        assert code == 0, err
        r = json.loads(out)
        assert r["split"] == "test" and r["sequences"] == len(test) and r["inks"] == describe(test)


def test_continuation_benchmark_flag_reports_size_and_style_against_oracle_and_chance(checkpoints, capsys):
    for kind in ("vrnn", "rnn"):
        code, out, err = run(["--model", checkpoints[kind], "--data", "synthetic", "--synthetic-lines", 2,
                              "--continuation", 4, "--json"], capsys)
        assert code == 0, err
        c = json.loads(out)["continuation"]
        assert c["lines"] == 4
        assert c["size_ratio_median"] > 0 and c["size_ratio_iqr"][0] <= c["size_ratio_median"] <= c["size_ratio_iqr"][1]
        for key in ("style_score", "oracle_score", "chance_score", "prefix_score"):
            assert 0.0 <= c[key] <= 1.0, (key, c)
        assert set(c["features"]) == {"log_height", "slant", "advance", "lift_rate", "stroke_length", "gap"}
    code, out, _ = run(["--model", checkpoints["rnn"], "--data", "synthetic", "--synthetic-lines", 2,
                        "--continuation", 4], capsys)
    assert code == 0 and "continuation benchmark (4 held-out lines" in out and "same-writer oracle" in out
    assert "per feature" in out and "    slant" in out and "its own first half" in out


def test_continuation_benchmark_at_several_temperatures(checkpoints, capsys):
    code, out, err = run(["--model", checkpoints["vrnn"], "--data", "synthetic", "--synthetic-lines", 2,
                          "--continuation", 4, "--temperature", 1.0, 0.5, "--json"], capsys)
    assert code == 0, err
    r = json.loads(out)
    assert [c["temperature"] for c in r["continuation_by_temperature"]] == [1.0, 0.5]
    assert r["continuation"] == r["continuation_by_temperature"][0]
    # the oracle and chance do not depend on the model's samples
    a, b = r["continuation_by_temperature"]
    assert (a["oracle_score"], a["chance_score"]) == (b["oracle_score"], b["chance_score"])
    code, out, _ = run(["--model", checkpoints["vrnn"], "--data", "synthetic", "--synthetic-lines", 2,
                        "--continuation", 4, "--temperature", 1.0, 0.5], capsys)
    assert code == 0 and "temperature 1)" in out and "temperature 0.5)" in out
    for bad in (0, -1, 11):
        code, _, err = run(["--model", checkpoints["vrnn"], "--data", "synthetic", "--continuation", 4,
                            "--temperature", bad], capsys)
        assert code != 0 and "--temperature must be in (0, 10]" in err and len(err.strip().splitlines()) == 1


def test_continuation_benchmark_with_adaptation(checkpoints, capsys):
    code, out, err = run(["--model", checkpoints["vrnn"], "--data", "synthetic", "--synthetic-lines", 2,
                          "--continuation", 4, "--temperature", 0.8, "--adapt", 0, 3, "--json"], capsys)
    assert code == 0, err
    runs = json.loads(out)["continuation_by_temperature"]
    assert [(c["temperature"], c["adapt_steps"]) for c in runs] == [(0.8, 0), (0.8, 3)]
    assert runs[0]["features"] != runs[1]["features"]  # the adapted copies write something else
    code, out, _ = run(["--model", checkpoints["rnn"], "--data", "synthetic", "--synthetic-lines", 2,
                        "--continuation", 4, "--adapt", 2], capsys)
    assert code == 0 and "adapted 2 steps to each prefix)" in out
    for bad in (-1, 501):
        code, _, err = run(["--model", checkpoints["vrnn"], "--data", "synthetic", "--continuation", 4,
                            "--adapt", bad], capsys)
        assert code != 0 and "--adapt must be between 0 and 500 steps" in err and len(err.strip().splitlines()) == 1


def test_continuation_benchmark_with_z_at_the_prior_mean(checkpoints, capsys):
    args = ["--data", "synthetic", "--synthetic-lines", 2, "--continuation", 4, "--temperature", 0.8, "--json"]
    code, out, err = run(["--model", checkpoints["vrnn"], *args], capsys)
    sampled = json.loads(out)["continuation"]
    code, out, err = run(["--model", checkpoints["vrnn"], *args, "--z-mode", "mean"], capsys)
    assert code == 0, err
    mean = json.loads(out)["continuation"]
    assert (sampled["z_mode"], mean["z_mode"]) == ("sample", "mean")
    assert mean["features"] != sampled["features"]  # z at its mean writes something else
    code, out, _ = run(["--model", checkpoints["rnn"], *args[:-1], "--z-mode", "mean"], capsys)
    assert code == 0 and "z at the prior mean)" in out  # the RNN-GMM has no z: the same continuations
    with pytest.raises(SystemExit) as e:
        run(["--model", checkpoints["vrnn"], *args, "--z-mode", "median"], capsys)
    assert e.value.code == 2 and "--z-mode" in capsys.readouterr().err


def test_continuation_benchmark_needs_two_writers_with_two_lines(checkpoints, capsys, tmp_path):
    for too_few in (1, 3):
        code, _, err = run(["--model", checkpoints["rnn"], "--data", "synthetic", "--continuation", too_few], capsys)
        assert code != 0 and "--continuation needs at least 4 lines" in err
    lonely = tmp_path / "one.json"
    two_strokes = [np.array([[0.0, 0.0], [5.0, 1.0]]), np.array([[9.0, 0.0], [12.0, 3.0]])]
    write_ink([Ink(strokes=two_strokes, writer="a"), Ink(strokes=two_strokes, writer="a")], lonely)
    code, _, err = run(["--model", checkpoints["rnn"], "--data", lonely, "--continuation", 4], capsys)
    assert code != 0 and "at least two writers" in err and len(err.strip().splitlines()) == 1
