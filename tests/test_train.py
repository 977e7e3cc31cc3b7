"""Training: schedules, state (de)serialization, the loop's guards, the CLI, kill-and-resume, DDP."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from vrnn.datasets import DataError, load_train_valid, read_inks, split_by_writer
from vrnn.ink import Ink
from vrnn.model import VRNNConfig, load_model
from vrnn.train import (
    STATE_FILE,
    Progress,
    Trainer,
    TrainOptions,
    fit,
    kl_weight,
    load_train_state,
    lr_factor,
    main,
    optimizer_from_flat,
    optimizer_to_flat,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = VRNNConfig(hidden=16, latent=4, mixtures=2, x_features=8, z_features=8, mlp=16)
TINY_FLAGS = ["--hidden", "16", "--latent", "4", "--mixtures", "2", "--features", "8", "--mlp", "16"]


def toy_inks(n: int, seed: int = 0, writers: int = 4) -> list[Ink]:
    """Loopy cursive-like lines (a few strokes of a trochoid), writer = i % writers."""
    rng = np.random.default_rng(seed)
    inks = []
    for i in range(n):
        strokes = []
        x0 = 0.0
        for _ in range(int(rng.integers(2, 4))):
            t = np.linspace(0, 2 * np.pi * rng.uniform(2, 4), int(rng.integers(30, 60)))
            slant = 0.3 * (i % writers)
            s = np.stack([x0 + 3 * t + np.sin(t) + slant * np.cos(t), 5 * np.cos(t)], 1)
            strokes.append(s + rng.normal(0, 0.05, s.shape))
            x0 = s[-1, 0] + 4
        inks.append(Ink(strokes=strokes, writer=f"w{i % writers}", label="toy"))
    return inks


def tiny_options(**kw) -> TrainOptions:
    base = dict(max_steps=12, batch_size=4, max_len=40, min_len=8, eval_every=4, warmup_steps=2,
                kl_warmup_steps=4, log_every=2, progress_bar=False, checkpoint_every=0)
    base.update(kw)
    return TrainOptions(**base)


def quiet(msg):  # Trainer log sink
    pass


# ----------------------------------------------------------------------------- schedules


def test_lr_warms_up_then_decays_to_the_floor():
    warm = [lr_factor(s, 0.0, warmup_steps=10, min_ratio=0.1) for s in range(10)]
    assert warm == sorted(warm) and warm[0] == pytest.approx(0.1) and warm[-1] == pytest.approx(1.0)
    decay = [lr_factor(100, f, warmup_steps=10, min_ratio=0.1) for f in np.linspace(0, 1, 11)]
    assert decay == sorted(decay, reverse=True)
    assert decay[0] == pytest.approx(1.0) and decay[-1] == pytest.approx(0.1)
    assert lr_factor(100, 2.0, 10, 0.1) == pytest.approx(0.1)  # clamped past the budget


def test_kl_weight_ramps_linearly_from_zero_to_one():
    assert [kl_weight(s, 4) for s in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert kl_weight(0, 0) == 1.0


# ----------------------------------------------------------------------------- state files


def test_optimizer_state_round_trips_through_flat_tensors():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 3)).pow(2).sum().backward()
        opt.step()
    tensors, meta = optimizer_to_flat(opt)
    assert tensors and all(torch.is_tensor(v) for v in tensors.values())
    json.dumps(meta)  # scalars are plain JSON
    clone = torch.nn.Linear(3, 2)
    clone.load_state_dict(model.state_dict())
    opt2 = torch.optim.Adam(clone.parameters(), lr=0.5)
    optimizer_from_flat(opt2, tensors, meta)
    assert opt2.param_groups[0]["lr"] == 0.1
    x = torch.randn(5, 3)
    for m, o in ((model, opt), (clone, opt2)):
        o.zero_grad()
        m(x).pow(2).sum().backward()
        o.step()
    assert torch.equal(model.weight, clone.weight)


# ----------------------------------------------------------------------------- data specs


def test_split_by_writer_holds_out_whole_writers_deterministically():
    inks = toy_inks(20, writers=5)
    train, valid = split_by_writer(inks, valid_fraction=0.2, seed=3)
    assert len(train) + len(valid) == 20 and valid
    assert not {i.writer for i in train} & {i.writer for i in valid}
    again = split_by_writer(inks, valid_fraction=0.2, seed=3)
    assert [id(i) for i in again[1]] == [id(i) for i in valid]


def test_split_with_one_writer_splits_inks():
    inks = toy_inks(10, writers=1)
    train, valid = split_by_writer(inks, valid_fraction=0.3)
    assert len(valid) == 3 and len(train) == 7
    with pytest.raises(DataError):
        split_by_writer(inks[:1])


def test_split_of_tiny_sets_holds_one_ink_out_and_reuses_only_a_single_ink():
    for n, writers in ((2, 1), (2, 2), (3, 1), (4, 4)):
        train, valid = split_by_writer(toy_inks(n, writers=writers), reuse_single=True)
        assert len(valid) >= 1 and len(train) >= 1 and len(train) + len(valid) == n
        assert not {id(i) for i in train} & {id(i) for i in valid}
    drawn = [Ink(strokes=ink.strokes) for ink in toy_inks(3)]  # drawn in the app: no writer
    train, valid = split_by_writer(drawn, reuse_single=True)
    assert len(valid) == 1 and len(train) == 2
    (one,) = toy_inks(1)
    train, valid = split_by_writer([one], reuse_single=True)
    assert train == [one] and valid == [one]  # the one case where validation is on the training set
    with pytest.raises(DataError, match="at least 2 inks"):
        split_by_writer([one])


def test_folder_spec_reads_ink_files_and_skips_bad_ones(tmp_path):
    from vrnn.formats import write_ink

    write_ink(toy_inks(3, seed=1), tmp_path / "a.json")
    (tmp_path / "sub").mkdir()
    write_ink(toy_inks(2, seed=2), tmp_path / "sub" / "b.json")
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "notes.md").write_text("ignored: not an ink suffix")
    warnings = []
    inks = read_inks(tmp_path, warn=warnings.append)
    assert len(inks) == 5
    assert len(warnings) == 1 and "broken.json" in warnings[0]


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.json", "no such file"),
    (lambda d: d, "no ink files"),
    (lambda d: (d / "bad.txt").write_text("hello\n") and d / "bad.txt", "bad.txt"),
])
def test_bad_data_specs_raise_a_one_line_data_error(tmp_path, make, message):
    spec = make(tmp_path)
    with pytest.raises(DataError) as e:
        load_train_valid(str(spec))
    assert message in str(e.value) and "\n" not in str(e.value)


# ----------------------------------------------------------------------------- fit / Trainer


def test_each_epoch_visits_every_window_once_in_a_fresh_order():
    t = Trainer(toy_inks(9), toy_inks(2, seed=9), config=TINY, options=tiny_options(max_steps=None, epochs=3),
                log=quiet)
    seen = []
    step = t._train_step
    t._train_step = lambda idx, flag: (seen.append(idx.tolist()), step(idx, flag))[1]
    t.run()
    spe = t.state.steps_per_epoch
    assert len(seen) == 3 * spe
    per_epoch = [sum(seen[e * spe : (e + 1) * spe], []) for e in range(3)]
    assert all(sorted(p) == list(range(len(t.train))) for p in per_epoch)
    # every pair differs, epoch 0 and epoch 2 included (a chained != never compares those two)
    assert per_epoch[0] != per_epoch[1] and per_epoch[1] != per_epoch[2] and per_epoch[0] != per_epoch[2]


def test_training_batches_come_longest_window_first_so_rows_stop_at_their_end():
    from vrnn.fused import active_rows

    t = Trainer(toy_inks(12), toy_inks(2, seed=9), config=TINY, options=tiny_options(max_steps=6, batch_size=6), log=quiet)
    masks = []
    t.model.register_forward_pre_hook(lambda mod, args: masks.append(args[1]) if mod.training else None)
    t.run()
    assert len(masks) == 6
    for m in masks:
        lengths = m.sum(1)
        assert torch.all(lengths[:-1] >= lengths[1:])
    assert any(active_rows(m) is not None for m in masks)  # some batch had rows that end early


def test_fit_trains_reports_progress_and_returns_the_best_model():
    inks = toy_inks(16)
    train, valid = split_by_writer(inks, valid_fraction=0.25)
    reports: list[Progress] = []
    model = fit(train, valid, config=TINY, options=tiny_options(max_steps=16, lr=5e-3), on_progress=reports.append)
    phases = [r.phase for r in reports]
    assert phases[-1] == "done" and "train" in phases and "valid" in phases
    steps = [r.step for r in reports]
    assert steps == sorted(steps) and steps[-1] == 16
    assert reports[-1].fraction == pytest.approx(1.0)
    valid_elbos = [r.valid_elbo for r in reports if r.phase == "valid"]
    assert max(valid_elbos) > valid_elbos[0]  # it learned something
    card = model.card
    assert card["steps"] == 16 and card["stop_reason"] == "max_steps"
    assert card["metrics"]["best_valid_elbo_per_point"] == pytest.approx(max(valid_elbos))
    assert not model.training
    # the returned weights are the best validation weights: re-measure them
    assert model.normalizer.std != (1.0, 1.0)


def test_progress_carries_the_true_training_elbo_and_validation_under_its_own_keys():
    reports: list[Progress] = []
    fit(toy_inks(9)[:7], toy_inks(9)[7:], config=TINY,
        options=tiny_options(max_steps=8, kl_warmup_steps=100, free_bits=0.5, eval_every=4),
        on_progress=reports.append)
    train = [r for r in reports if r.phase == "train"]
    valid = [r for r in reports if r.phase == "valid"]
    assert train and valid
    for r in train:
        assert r.elbo == pytest.approx(-(r.kl + r.nll), rel=1e-6)
        assert r.kl_weight < 1
        # the warm-up weight and free bits make the objective differ from the negative ELBO
        assert r.loss != pytest.approx(-r.elbo, rel=1e-3)
        assert r.valid_elbo is None and r.valid_kl is None and r.valid_nll is None
    for r in valid:
        assert r.loss is None and r.kl is None and r.nll is None and r.elbo is None
        assert r.valid_kl > 0 and r.valid_nll is not None
        assert r.valid_elbo == pytest.approx(-(r.valid_kl + r.valid_nll), rel=1e-6)
        assert r.best_valid_elbo >= r.valid_elbo


def test_fit_returns_the_best_weights_not_the_last(tmp_path):
    from vrnn.training.state import load_train_state as load_state

    # a high learning rate and patience 1: the run stops at the first evaluation that is worse
    t = Trainer(toy_inks(12)[:9], toy_inks(12)[9:], config=TINY, out=tmp_path, log=quiet,
                options=tiny_options(max_steps=400, lr=3e-2, warmup_steps=1, kl_warmup_steps=0, eval_every=2,
                                     patience=1))
    model = t.run()
    assert model.card["stop_reason"] == "early_stopping"
    assert model.card["metrics"]["best_step"] < model.card["steps"]
    # the card says when the kept weights were made, beside the whole run's time
    assert 0 < model.card["metrics"]["best_elapsed_s"] <= model.card["wall_time_s"]
    tensors, _ = load_state(tmp_path)
    returned = model.state_dict()
    assert all(torch.equal(returned[k], tensors[f"best.{k}"]) for k in returned)
    assert any(not torch.equal(returned[k], tensors[f"model.{k}"]) for k in returned)  # not the last weights
    last = t.evaluate_valid()["elbo_per_point"]
    t.model.load_state_dict(returned)  # re-measure the returned weights with the same validation noise
    assert t.evaluate_valid()["elbo_per_point"] == pytest.approx(t.state.best_elbo, abs=1e-6)
    assert t.state.best_elbo > last


def test_fine_tuning_never_changes_the_base_model():
    inks = toy_inks(12)
    base = fit(inks[:9], inks[9:], config=TINY, options=tiny_options(max_steps=4))
    before = {k: v.clone() for k, v in base.state_dict().items()}
    card_before = json.dumps(base.card, sort_keys=True)
    tuned = fit(toy_inks(8, seed=5), toy_inks(3, seed=6), config=None, base_model=base,
                options=tiny_options(max_steps=6, lr=1e-2))
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())
    assert json.dumps(base.card, sort_keys=True) == card_before
    assert tuned is not base and tuned.normalizer == base.normalizer
    assert any(not torch.equal(before[k], v) for k, v in tuned.state_dict().items())


def test_stop_event_cancels_cleanly():
    stop = threading.Event()
    seen = []

    def on_progress(p):
        seen.append(p.step)
        if p.phase == "train":
            stop.set()

    model = fit(toy_inks(10)[:8], toy_inks(10)[8:], config=TINY, options=tiny_options(max_steps=1000),
                on_progress=on_progress, stop_event=stop)
    assert model.card["stop_reason"] == "cancelled"
    assert model.card["steps"] <= 3


def test_a_non_finite_batch_is_skipped_and_reported_without_touching_the_weights(tmp_path):
    inks = toy_inks(12)
    t = Trainer(inks[:9], inks[9:], config=TINY, options=tiny_options(max_steps=None, epochs=2, eval_every=1000),
                out=tmp_path, log=quiet)
    t.train.x[0, 3, 0] = float("nan")  # one poisoned window: one bad batch per epoch
    model = t.run()
    assert t.state.skipped == 2
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(torch.isfinite(p).all() for p in t.model.parameters())
    skips = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["kind"] == "skip" for r in skips) == 2


def test_a_non_finite_validation_is_never_the_best_and_checkpoints_stay_loadable(tmp_path):
    import vrnn

    inks = toy_inks(12)
    t = Trainer(inks[:9], inks[9:], config=TINY, options=tiny_options(max_steps=4, eval_every=2), out=tmp_path,
                log=quiet)
    t.valid.x[0, 3, 0] = float("nan")
    t.run()
    assert t.state.best_elbo is None and t.state.last_valid["elbo_per_point"] is None
    card = vrnn.load_model(tmp_path, device="cpu").card
    assert card["metrics"]["best_valid_elbo_per_point"] is None and card["steps"] == 4
    for line in (tmp_path / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c} in metrics.jsonl"))


def test_training_stops_when_every_batch_is_non_finite():
    from vrnn.train import TrainingError

    t = Trainer(toy_inks(8), toy_inks(2, seed=9), config=TINY, options=tiny_options(max_bad_batches=3), log=quiet)
    t.train.x[:, 2, 0] = float("inf")
    with pytest.raises(TrainingError, match="non-finite"):
        t.run()


def test_early_stopping_after_patience_evaluations_without_improvement():
    # lr = 0: the validation ELBO (fixed noise) never improves after the first evaluation
    model = fit(toy_inks(9)[:7], toy_inks(9)[7:], config=TINY,
                options=tiny_options(max_steps=100, lr=0.0, kl_warmup_steps=0, eval_every=2, patience=2))
    assert model.card["stop_reason"] == "early_stopping"
    assert model.card["steps"] == 6 and model.card["metrics"]["best_step"] == 2


def test_patience_counts_only_after_the_kl_warm_up():
    # as above (lr = 0: never an improvement after step 2), but the KL weight ramps up until step 6:
    # evaluations at steps 4 and 6 - 2 = 4 do not count, those at 6 and 8 do
    model = fit(toy_inks(9)[:7], toy_inks(9)[7:], config=TINY,
                options=tiny_options(max_steps=100, lr=0.0, kl_warmup_steps=6, eval_every=2, patience=2))
    assert model.card["stop_reason"] == "early_stopping"
    assert model.card["steps"] == 8 and model.card["metrics"]["best_step"] == 2


def test_the_seed_makes_a_run_reproducible():
    inks = toy_inks(10)
    runs = [fit(inks[:8], inks[8:], config=TINY, options=tiny_options(max_steps=3, seed=seed)) for seed in (1, 1, 2)]
    weights = [torch.cat([p.flatten() for p in m.parameters()]) for m in runs]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])


def test_minutes_budget_stops_the_run():
    model = fit(toy_inks(9)[:7], toy_inks(9)[7:], config=TINY,
                options=tiny_options(max_steps=None, epochs=None, minutes=0.5 / 60))
    assert model.card["stop_reason"] == "minutes" and model.card["steps"] >= 1
    assert model.card["wall_time_s"] >= 0.5


def test_rnn_baseline_trains_too():
    model = fit(toy_inks(9)[:7], toy_inks(9)[7:], config=VRNNConfig(model="rnn", hidden=16, mixtures=2, x_features=8,
                mlp=16), options=tiny_options(max_steps=4))
    assert model.config.model == "rnn" and model.card["steps"] == 4


# ----------------------------------------------------------------------------- command line


def _run_main(args, capsys):
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_cli_writes_a_loadable_checkpoint_with_a_model_card(tmp_path, capsys):
    import vrnn
    from vrnn.formats import write_ink

    data = tmp_path / "inks.json"
    write_ink(toy_inks(12), data)
    out = tmp_path / "run"
    code, stdout, err = _run_main(["--data", data, "--out", out, *TINY_FLAGS, "--max-steps", 6, "--eval-every", 3,
                                   "--batch-size", 4, "--max-len", 40, "--no-progress", "--seed", 3], capsys)
    assert code == 0, err
    assert "stopped: max_steps after 6 steps" in stdout
    model = vrnn.load_model(out, device="cpu")
    card = model.card
    assert card["data"] == str(data) and card["seed"] == 3 and card["steps"] == 6
    assert "--max-steps 6" in card["command"] and card["library_version"] == vrnn.__version__
    assert card["train_inks"] + card["valid_inks"] == 12 and card["wall_time_s"] > 0 and card["date"]
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in records} >= {"train", "valid", "summary"}
    state = json.loads((out / "train_state.json").read_text())
    assert state["step"] == 6 and state["stop_reason"] == "max_steps"
    _, from_safetensors = load_train_state(out)
    assert from_safetensors == state


def test_model_flags_z_features_and_latent_mlp():
    from vrnn.train import build_parser, config_from_args

    parser = build_parser()
    base = config_from_args(parser.parse_args(["--out", "x", "--features", "40", "--mlp", "96"]))
    assert (base.x_features, base.z_features, base.mlp, base.latent_mlp) == (40, 40, 96, None)
    thin = config_from_args(parser.parse_args(["--out", "x", "--features", "40", "--z-features", "16",
                                               "--latent-mlp", "64"]))
    assert (thin.x_features, thin.z_features, thin.latent_mlp) == (40, 16, 64)


def test_every_training_option_has_a_flag_with_its_default():
    from dataclasses import fields

    from vrnn.train import build_parser
    from vrnn.training.options import flag_of, options_from_args

    parser = build_parser()
    assert options_from_args(parser.parse_args(["--out", "x"])) == TrainOptions()
    text = parser.format_help()
    for f in fields(TrainOptions):
        assert flag_of(f.name) in text and f.metadata["help"]
    changed = options_from_args(parser.parse_args(["--out", "x", "--lr", "0.01", "--no-progress", "--epochs", "2"]))
    assert changed == TrainOptions(lr=0.01, progress_bar=False, epochs=2.0)


def test_options_from_dict_is_strict_like_the_model_config():
    assert TrainOptions.from_dict(TrainOptions(lr=0.5).to_dict()) == TrainOptions(lr=0.5)
    with pytest.raises(ValueError, match="unknown"):
        TrainOptions.from_dict({"lr": 0.1, "learning_rate": 0.1})
    with pytest.raises(ValueError, match="unknown"):
        VRNNConfig.from_dict({"hidden": 8, "hiden": 8})


def _short_run(tmp_path, capsys, *extra):
    from vrnn.formats import write_ink

    data = tmp_path / "inks.json"
    write_ink(toy_inks(10), data)
    out = tmp_path / "run"
    code, _, err = _run_main(["--data", data, "--out", out, *TINY_FLAGS, "--max-steps", 4, "--eval-every", 2,
                              "--batch-size", 4, "--max-len", 40, "--no-progress", *extra], capsys)
    assert code == 0, err
    return data, out


def test_resume_applies_safe_overrides(tmp_path, capsys):
    import vrnn

    data, out = _short_run(tmp_path, capsys)
    # the run's own flags may be repeated; budget, cadence and the peak learning rate may change
    code, stdout, err = _run_main(["--out", out, "--resume", "--data", data, "--batch-size", 4, *TINY_FLAGS,
                                   "--max-steps", 7, "--lr", "1e-4", "--eval-every", 3, "--no-progress"], capsys)
    assert code == 0, err
    assert "resuming at step 4" in err and "stopped: max_steps after 7 steps" in stdout
    state = json.loads((out / "train_state.json").read_text())
    assert state["step"] == 7
    assert state["options"]["lr"] == 1e-4 and state["options"]["eval_every"] == 3
    assert state["options"]["max_steps"] == 7 and state["options"]["batch_size"] == 4
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert max(r["lr"] for r in records if r["kind"] == "train" and r["step"] > 4) <= 1e-4
    assert [r["step"] for r in records if r["kind"] == "valid"] == [2, 4, 6, 7]
    card = vrnn.load_model(out, device="cpu").card
    assert card["options"]["lr"] == 1e-4 and "--lr 1e-4" in card["resumed_with"][-1]


@pytest.mark.parametrize("flags, named", [
    (["--batch-size", "8"], "--batch-size"),
    (["--seed", "5"], "--seed"),
    (["--max-len", "30"], "--max-len"),
    (["--kl-warmup-steps", "3"], "--kl-warmup-steps"),
    (["--hidden", "32"], "--hidden"),
    (["--model", "rnn"], "--model"),
    (["--valid-fraction", "0.5"], "--valid-fraction"),
    (["--draw-seed", "1"], "--draw-seed"),
    (["--data", "synthetic"], "--data"),
])
def test_resume_refuses_flags_that_would_change_the_run_with_one_line(tmp_path, capsys, flags, named):
    _, out = _short_run(tmp_path, capsys)
    before = (out / "train_state.json").read_text()
    code, stdout, err = _run_main(["--out", out, "--resume", "--max-steps", 8, *flags], capsys)
    assert code == 2 and not stdout
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0]
    assert (out / "train_state.json").read_text() == before  # the run is untouched


def test_trainer_refuses_unsafe_overrides_on_resume(tmp_path, capsys):
    from vrnn.train import TrainingError

    _, out = _short_run(tmp_path, capsys)
    inks = toy_inks(10)
    with pytest.raises(TrainingError, match="--batch-size cannot change"):
        Trainer(inks, inks, out=out, resume=True, options_override={"batch_size": 2}, log=quiet)
    train, valid = load_train_valid(str(tmp_path / "inks.json"))  # the run's data, split as the CLI did
    t = Trainer(train, valid, out=out, resume=True, options_override={"max_steps": 6, "batch_size": 4}, log=quiet)
    t.run()
    assert t.state.step == 6 and t.options.batch_size == 4


def test_cli_refuses_to_overwrite_a_run_without_resume(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / STATE_FILE).write_bytes(b"x")
    code, _, err = _run_main(["--data", "synthetic", "--out", out], capsys)
    assert code == 2 and "--resume" in err and len(err.strip().splitlines()) == 1


def test_cli_out_that_is_a_file_exits_2(tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    code, _, err = _run_main(["--data", "synthetic", "--out", tmp_path / "taken"], capsys)
    assert code == 2 and "cannot create" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("spec", ["missing.json", "garbage.ndjson", "empty"])
def test_cli_bad_data_exits_2_with_one_line(tmp_path, capsys, spec):
    (tmp_path / "garbage.ndjson").write_text("this is not json\n")
    (tmp_path / "empty").mkdir()
    code, stdout, err = _run_main(["--data", tmp_path / spec, "--out", tmp_path / "run"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and spec in lines[0]
    assert not (tmp_path / "run" / STATE_FILE).exists()


@pytest.mark.slow
def test_cli_bad_data_in_a_real_process_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("WORD a\nNUMSTROKES banana\n")
    r = subprocess.run([sys.executable, "-m", "vrnn.train", "--data", str(bad), "--out", str(tmp_path / "o")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, env=_env())
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_tensorboard_flag_without_the_package_notes_it_and_trains(tmp_path, capsys, monkeypatch):
    from vrnn.formats import write_ink

    data = tmp_path / "inks.json"
    write_ink(toy_inks(8), data)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # importing it raises ImportError
    code, _, err = _run_main(["--data", data, "--out", tmp_path / "run", *TINY_FLAGS, "--max-steps", 2,
                              "--max-len", 40, "--no-progress", "--tensorboard"], capsys)
    assert code == 0
    assert "--tensorboard ignored" in err
    assert not (tmp_path / "run" / "tensorboard").exists()


def test_tensorboard_flag_with_the_package_writes_event_files(tmp_path, capsys):
    pytest.importorskip("torch.utils.tensorboard", reason="the optional tensorboard package is not installed")
    from vrnn.formats import write_ink

    data = tmp_path / "inks.json"
    write_ink(toy_inks(8), data)
    code, _, err = _run_main(["--data", data, "--out", tmp_path / "run", *TINY_FLAGS, "--max-steps", 2,
                              "--max-len", 40, "--no-progress", "--tensorboard"], capsys)
    assert code == 0, err
    assert "ignored" not in err
    assert list((tmp_path / "run" / "tensorboard").glob("events.*"))


# ----------------------------------------------------------------------------- real processes


def _env(**extra):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.update(extra)
    return env


RESUME_ARGS = ["--data", "synthetic", "--synthetic-lines", "24", *TINY_FLAGS, "--batch-size", "8", "--max-len", "60",
               "--max-steps", "100", "--eval-every", "25", "--checkpoint-steps", "10", "--checkpoint-every", "0",
               "--kl-warmup-steps", "50", "--no-progress", "--seed", "7"]


def _final_state(out: Path):
    tensors, state = load_train_state(out)
    return {k: v for k, v in tensors.items() if k.startswith(("model.", "best.", "optim."))}, state


@pytest.mark.slow
def test_resume_after_sigkill_finishes_exactly_like_an_uninterrupted_run(tmp_path):
    cmd = [sys.executable, "-m", "vrnn.train"]
    straight = tmp_path / "straight"
    r = subprocess.run(cmd + RESUME_ARGS + ["--out", str(straight)], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd + RESUME_ARGS + ["--out", str(killed)], cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    step_at_kill = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            step_at_kill = json.loads((killed / "train_state.json").read_text())["step"]
        except (OSError, ValueError, KeyError):
            step_at_kill = 0
        if step_at_kill >= 30:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 30 <= step_at_kill < 100

    r = subprocess.run(cmd + ["--out", str(killed), "--resume", "--no-progress"], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resuming at step" in r.stderr
    a, sa = _final_state(straight)
    b, sb = _final_state(killed)
    assert sa["step"] == sb["step"] == 100 and sb["stop_reason"] == "max_steps"
    assert sa["best_step"] == sb["best_step"] and sa["best_elbo"] == sb["best_elbo"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the log has no duplicated lines from the steps redone after the kill
    steps = [json.loads(x)["step"] for x in (killed / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["kind"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 100
    import vrnn

    assert vrnn.load_model(killed, device="cpu").card["resumed_with"]


@pytest.mark.slow
def test_ctrl_c_stops_after_the_step_with_a_checkpoint(tmp_path):
    out = tmp_path / "run"
    args = [a if a != "100" else "100000" for a in RESUME_ARGS]  # a run far too long to finish
    proc = subprocess.Popen([sys.executable, "-m", "vrnn.train", *args, "--out", str(out)], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "train_state.json").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "stopped: cancelled" in stdout
    state = json.loads((out / "train_state.json").read_text())
    assert state["stop_reason"] == "cancelled" and state["step"] >= 10


@pytest.mark.slow
def test_torchrun_trains_with_two_cpu_processes(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--rdzv-backend=c10d",
           "--rdzv-endpoint=localhost:0", "-m", "vrnn.train",
           "--data", "synthetic", "--synthetic-lines", "16", *TINY_FLAGS, "--batch-size", "4", "--max-len", "60",
           "--max-steps", "8", "--eval-every", "4", "--no-progress", "--out", str(out)]
    r = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    import vrnn

    model = vrnn.load_model(out, device="cpu")
    assert model.card["world_size"] == 2 and model.card["steps"] == 8
    summaries = [x for x in (out / "metrics.jsonl").read_text().splitlines() if '"summary"' in x]
    assert len(summaries) == 1  # only rank 0 writes
    assert r.stdout.count("stopped: max_steps") == 1


@pytest.mark.slow
def test_resume_on_another_number_of_processes_continues_the_epoch(tmp_path):
    """Two torchrun processes train 6 steps; one process resumes the run and trains to 12."""
    out = tmp_path / "ddp"
    common = ["--data", "synthetic", "--synthetic-lines", "16", *TINY_FLAGS, "--batch-size", "4", "--max-len", "60",
              "--eval-every", "3", "--no-progress", "--out", str(out)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--rdzv-backend=c10d",
           "--rdzv-endpoint=localhost:0", "-m", "vrnn.train", *common, "--max-steps", "6"]
    r = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    two = json.loads((out / "train_state.json").read_text())
    assert two["world_size"] == 2 and two["step"] == 6

    r = subprocess.run([sys.executable, "-m", "vrnn.train", "--out", str(out), "--resume", "--max-steps", "12",
                        "--no-progress"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    one = json.loads((out / "train_state.json").read_text())
    assert one["world_size"] == 1 and one["step"] == 12 and one["stop_reason"] == "max_steps"
    # one process has twice the steps per epoch: the same fraction of the same epoch carries over
    assert one["steps_per_epoch"] >= 2 * two["steps_per_epoch"] - 1
    assert f"note: 2 -> 1 processes; continuing epoch {two['epoch']}" in r.stderr
    expected_epoch_steps = two["epoch"] * one["steps_per_epoch"] + two["batch_index"] * one["steps_per_epoch"] \
        // two["steps_per_epoch"] + 6
    assert one["epoch"] * one["steps_per_epoch"] + one["batch_index"] == expected_epoch_steps
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["kind"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 12
    import vrnn

    assert vrnn.load_model(out, device="cpu").card["world_size"] == 1


# ----------------------------------------------------------------------------- data mixtures

OMNIGLOT = ROOT.parent / "shared" / "data" / "omniglot"


@pytest.mark.parametrize("text, spec, weight", [
    ("synthetic", "synthetic", None),
    ("synthetic:0.5", "synthetic", 0.5),
    ("/data/omniglot.npz:2", "/data/omniglot.npz", 2.0),
    ("runs/a:b/inks.json", "runs/a:b/inks.json", None),  # not a number after the last ':': part of the path
    ("C:/inks", "C:/inks", None),
    ("odd:1:1", "odd:1", 1.0),
])
def test_data_source_syntax(text, spec, weight):
    from vrnn.datasets import DataSource

    src = DataSource.parse(text)
    assert (src.spec, src.weight) == (spec, weight)
    assert DataSource.parse(str(src)) == src


@pytest.mark.parametrize("text", ["synthetic:0", "synthetic:-1", "inks.json:nan", "inks.json:inf"])
def test_data_source_weight_must_be_positive(text):
    from vrnn.datasets import DataSource

    with pytest.raises(DataError, match="positive"):
        DataSource.parse(text)


def test_holdout_depends_only_on_the_writer_so_sources_agree():
    from vrnn.datasets import holdout_split

    a = toy_inks(60, seed=1, writers=30)
    b = toy_inks(40, seed=2, writers=20)  # writers w0..w19 are in both sets, with other inks
    place = {}
    for inks in (a, b, a + b, list(reversed(a + b))):
        train, valid, test = holdout_split(inks, valid_fraction=0.2, test_fraction=0.2, seed=4)
        assert train and valid and test and len(train) + len(valid) + len(test) == len(inks)
        for name, part in (("train", train), ("valid", valid), ("test", test)):
            for ink in part:
                assert place.setdefault(ink.writer, name) == name, f"{ink.writer} moved to {name}"
    # inks without a writer: placed by their points, wherever they come from
    anon = [Ink(strokes=ink.strokes) for ink in toy_inks(30, seed=3)]
    first = holdout_split(anon, valid_fraction=0.3, test_fraction=0.3, seed=0)
    again = holdout_split(anon[::-1] + toy_inks(5, seed=8), valid_fraction=0.3, test_fraction=0.3, seed=0)
    assert all({id(i) for i in f} <= {id(i) for i in g} for f, g in zip(first, again))


def test_mixture_order_gives_each_source_its_share():
    from vrnn.training.windows import mixture_order

    source = torch.tensor([0] * 10 + [1] * 2)
    orders = [mixture_order(source, [0.5, 0.5], seed=3, epoch=e) for e in range(3)]
    for order in orders:
        assert len(order) == 12
        counts = torch.bincount(order, minlength=12)
        assert counts[:10].sum() == 6 and counts[10:].sum() == 6
        assert counts[:10].max() == 1 and counts[10:].tolist() == [3, 3]  # the small source is repeated evenly
    assert torch.equal(orders[0], mixture_order(source, [0.5, 0.5], seed=3, epoch=0))
    assert not torch.equal(orders[0], orders[2])


def test_trainer_samples_a_mixture_by_its_weights():
    small = toy_inks(3, seed=1, writers=1)
    big = toy_inks(12, seed=2, writers=3)
    t = Trainer(big + small, toy_inks(2, seed=9), config=TINY, log=quiet, sources=[0] * 12 + [1] * 3,
                weights=[1.0, 3.0], options=tiny_options(max_steps=None, epochs=2, eval_every=1000))
    seen = []
    step = t._train_step
    t._train_step = lambda idx, flag: (seen.append(idx), step(idx, flag))[1]
    t.run()
    picked = t.train.source[torch.cat(seen)]
    share = (picked == 1).float().mean().item()
    assert share == pytest.approx(0.75, abs=0.05)  # 3 : 1, though the small source has fewer windows
    assert t.state.mixture == [0.25, 0.75]
    with pytest.raises(ValueError, match="sources"):
        Trainer(big, big, config=TINY, log=quiet, weights=[1.0, 1.0], options=tiny_options())


def test_cli_trains_on_a_weighted_mixture_records_it_and_resumes(tmp_path, capsys):
    import vrnn
    from vrnn.formats import write_ink

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_ink(toy_inks(12, seed=1, writers=6), a)
    write_ink([Ink(strokes=ink.strokes) for ink in toy_inks(10, seed=2)], b)  # no writer ids
    out = tmp_path / "run"
    flags = [*TINY_FLAGS, "--batch-size", 4, "--max-len", 40, "--eval-every", 2, "--no-progress"]
    code, stdout, err = _run_main(["--data", f"{a}:3", "--data", f"{b}:1", "--data", "synthetic:1",
                                   "--synthetic-lines", 4, "--out", out, "--max-steps", 3, *flags], capsys)
    assert code == 0, err
    card = vrnn.load_model(out, device="cpu").card
    assert card["data"] == f"{a}:3 + {b}:1 + synthetic:1"
    assert [m["source"] for m in card["mixture"]] == [str(a), str(b), "synthetic"]
    assert [m["weight"] for m in card["mixture"]] == [0.6, 0.2, 0.2]
    assert all(m["train_inks"] > 0 and m["valid_inks"] > 0 for m in card["mixture"])
    assert card["train_inks"] == sum(m["train_inks"] for m in card["mixture"])
    # validation is reported per source too, and the sources' points make up the whole
    valid = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"valid"' in x][-1]
    assert len(valid["by_source"]) == 3 and sum(v["points"] for v in valid["by_source"]) == valid["points"]
    total = sum(v["elbo_per_point"] * v["points"] for v in valid["by_source"]) / valid["points"]
    assert total == pytest.approx(valid["elbo_per_point"], rel=1e-9)
    assert card["metrics"]["last_valid_elbo_by_source"] == [v["elbo_per_point"] for v in valid["by_source"]]
    state = json.loads((out / "train_state.json").read_text())
    assert state["mixture"] == pytest.approx([0.6, 0.2, 0.2])
    code, stdout, err = _run_main(["--out", out, "--resume", "--max-steps", 5, "--no-progress"], capsys)
    assert code == 0, err
    assert json.loads((out / "train_state.json").read_text())["step"] == 5
    code, _, err = _run_main(["--out", out, "--resume", "--data", f"{a}:1", "--data", f"{b}:1",
                              "--data", "synthetic:1", "--max-steps", 6], capsys)
    assert code == 2 and "differs from the run's data" in err and len(err.strip().splitlines()) == 1
    code, _, err = _run_main(["--out", tmp_path / "run2", "--data", f"{a}:1", "--data", f"{a}:2"], capsys)
    assert code == 2 and "given twice" in err


def test_omniglot_raw_zips_hold_the_same_drawers_out_of_both(tmp_path):
    from vrnn.datasets import load_eval_inks, load_mixture

    zips = [OMNIGLOT / "strokes_background_small1.zip", OMNIGLOT / "strokes_background_small2.zip"]
    if not all(z.exists() for z in zips):
        pytest.skip(f"Omniglot raw strokes not found in {OMNIGLOT} (../shared/data is not beside this checkout)")
    m = load_mixture([f"{zips[0]}:1", f"{zips[1]}:1"])
    test = [ink for z in zips for ink in load_eval_inks(str(z), split="test")]
    train_w = {i.writer for i in m.train}
    held_w = {i.writer for i in m.valid} | {i.writer for i in test}
    assert train_w and held_w and not train_w & held_w
    latin = {w for w in train_w | held_w if w.startswith("omniglot-Latin-")}
    assert len(latin) == 20  # the Latin drawers, in both zips, each on one side only
    assert {i.writer for i in test} - {i.writer for i in m.valid}


def test_free_bits_mode_flag(tmp_path, capsys):
    code, _, err = _run_main(["--data", "synthetic", "--synthetic-lines", "20", "--out", tmp_path / "bad",
                              "--free-bits", "0.02", "--free-bits-mode", "per-step", *TINY_FLAGS], capsys)
    errors = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and "--free-bits-mode" in errors[0] and "per-step" in errors[0]
    code, _, err = _run_main(["--data", "synthetic", "--synthetic-lines", "20", "--out", tmp_path / "run",
                              "--free-bits", "0.02", "--free-bits-mode", "total", "--max-steps", "3",
                              "--eval-every", "3", "--no-progress", *TINY_FLAGS], capsys)
    assert code == 0, err
    card = load_model(tmp_path / "run").card
    assert "total" in json.dumps(card)  # the card's options record the mode


def test_aux_weight_trains_the_auxiliary_head_and_refuses_the_baseline(tmp_path, capsys):
    code, _, err = _run_main(["--data", "synthetic", "--synthetic-lines", "20", "--out", tmp_path / "rnn",
                              "--model", "rnn", "--aux-weight", "1", *TINY_FLAGS], capsys)
    errors = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and "--aux-weight" in errors[0] and "VRNN" in errors[0]
    code, _, err = _run_main(["--data", "synthetic", "--out", tmp_path / "neg", "--aux-weight", "-1"], capsys)
    assert code == 2 and "--aux-weight" in err
    _, out = _short_run(tmp_path, capsys, "--aux-weight", "0.5")
    model = load_model(out, device="cpu")
    assert model.config.aux_hidden > 0 and model.card["options"]["aux_weight"] == 0.5
    from vrnn.model import VRNN, add_aux_head

    untrained = add_aux_head(VRNN(model.config.__class__(**{**model.config.to_dict(), "aux_hidden": 0})), seed=0)
    assert not torch.equal(untrained.aux[0].weight, model.aux[0].weight)  # the head is in the optimizer: it moved
    # a run from that checkpoint without --aux-weight drops the head (it would get no gradient)
    again = tmp_path / "again"
    code, _, err = _run_main(["--init-from", out, "--data", tmp_path / "inks.json", "--out", again, "--max-steps", 2,
                              "--eval-every", 2, "--batch-size", 4, "--max-len", 40, "--no-progress"], capsys)
    assert code == 0, err
    plain = load_model(again, device="cpu")
    assert plain.aux is None and plain.config.aux_hidden == 0
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in records if r["kind"] == "valid"]
    assert valid and all(math.isfinite(r["elbo_per_point"]) for r in valid)


def test_init_from_starts_a_new_run_from_a_checkpoint(tmp_path, capsys):
    data, first = _short_run(tmp_path, capsys)
    base = load_model(first, device="cpu")
    out = tmp_path / "second"
    args = ["--init-from", first, "--data", data, "--out", out, "--max-steps", 3, "--eval-every", 3,
            "--batch-size", 4, "--max-len", 40, "--no-progress", "--kl-warmup-steps", 0]
    code, _, err = _run_main([*args, "--hidden", "16"], capsys)  # repeating the checkpoint's value is fine
    assert code == 0, err
    model = load_model(out, device="cpu")
    assert model.config == base.config and model.normalizer.to_dict() == base.normalizer.to_dict()
    init = model.card["init_from"]
    assert init["path"] == str(first) and init["steps"] == base.card["metrics"]["best_step"]
    assert init["best_valid_elbo_per_point"] == base.card["metrics"]["best_valid_elbo_per_point"]
    assert model.card["steps"] == 3  # a new run: its own steps, its own optimizer
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), base.state_dict().values()))
    # the learning-curve script reads the two runs as one: the parent up to the step it was saved at, then the child
    import importlib.util

    spec = importlib.util.spec_from_file_location("learning_curves", ROOT / "scripts" / "learning_curves.py")
    curves = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(curves)
    parent, child, both = curves.read_curve(first), curves.read_curve(out), curves.read_lineage(f"{first}+{out}")
    step0 = init["steps"]
    head = [p for p in parent if p[0] <= step0]
    assert both[: len(head)] == head and len(both) == len(head) + len(child)
    assert [p[0] for p in both[len(head):]] == [p[0] + step0 for p in child]
    assert both[-1][1] == pytest.approx(child[-1][1] + init["elapsed_s"] / 60)
    with pytest.raises(SystemExit, match="init-from"):
        curves.read_lineage(f"{out}+{first}")
    # a third stage records its parent's lineage, and the curves chain all three
    third = tmp_path / "third"
    code, _, err = _run_main(["--init-from", out, "--data", data, "--out", third, *args[6:]], capsys)
    assert code == 0, err
    init3 = load_model(third, device="cpu").card["init_from"]
    assert init3["path"] == str(out) and init3["init_from"]["path"] == str(first)
    step1 = step0 + init3["steps"]
    chain = curves.read_lineage(f"{first}+{out}+{third}")
    assert chain[: -len(curves.read_curve(third))] == [p for p in both if p[0] <= step1]
    assert [p[0] for p in chain[-len(curves.read_curve(third)):]] == [p[0] + step1 for p in curves.read_curve(third)]
    # a model flag that differs, a checkpoint that is not one, --resume beside it: one line each
    for extra, out_dir, named in ((["--hidden", "32"], "b1", "--hidden"), ([], "b2", "--init-from"),
                                  (["--resume"], "second", "--init-from")):
        bad = list(args)
        bad[bad.index(out)] = out if out_dir == "second" else tmp_path / out_dir
        if out_dir == "b2":
            bad[1] = tmp_path / "missing"
        code, _, err = _run_main([*bad, *extra], capsys)
        errors = [line for line in err.strip().splitlines() if line.startswith("error: ")]
        assert code == 2 and len(errors) == 1 and named in errors[0], (extra, err)
