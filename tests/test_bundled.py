"""The bundled models in pretrained/: they load, their cards say how they were made, and the
step benchmark measures the sizes that are actually bundled."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from vrnn import load_model

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("step_ratio", ROOT / "bench" / "step_ratio.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _bench_sizes() -> dict:
    return _bench().BUNDLED


@pytest.mark.parametrize("kind", ["vrnn", "rnn"])
def test_bundled_cards_record_mixture_steps_time_and_metrics(kind):
    model = load_model(ROOT / "pretrained" / kind)
    card = model.card
    assert card["model"] == kind and model.config.model == kind
    assert [m["source"] for m in card["mixture"]] and sum(m["weight"] for m in card["mixture"]) == pytest.approx(1.0)
    # a run continued from an earlier one (--init-from) counts the training of its parent too
    init = card.get("init_from") or {"steps": 0, "elapsed_s": 0.0}
    assert card["steps"] + init["steps"] > 10_000 and card["wall_time_s"] + init["elapsed_s"] > 1800
    if card.get("init_from"):
        assert init["command"] and init["best_valid_elbo_per_point"] is not None
    m = card["metrics"]
    assert 0 < m["best_step"] <= card["steps"]
    assert 0 < m["best_elapsed_s"] <= card["wall_time_s"]
    for name in ("synthetic-test", "omniglot-test", "uji"):
        assert card["evaluation"][name]["points"] > 0


def test_step_benchmark_measures_the_bundled_sizes():
    sizes = _bench_sizes()
    for kind in ("vrnn", "rnn"):
        cfg = load_model(ROOT / "pretrained" / kind).config
        for key in ("hidden", "mlp", "latent", "mixtures"):
            assert getattr(cfg, key) == sizes[key], (kind, key)
    vrnn = load_model(ROOT / "pretrained" / "vrnn").config
    assert (vrnn.latent_mlp, vrnn.z_features) == (sizes["latent_mlp"], sizes["z_features"])


def test_step_benchmark_mixture_is_the_bundled_recipes():
    # bench/step_ratio.py --mixture times the trainer on scripts/train_bundled.sh's AUG_DATA
    script = (ROOT / "scripts" / "train_bundled.sh").read_text()
    aug = re.search(r"^AUG_DATA=\((.*?)\)$", script, re.S | re.M).group(1)
    specs = [s.strip('"') for s in shlex.split(aug.replace('"$D/', '"DATA/').replace("$D/", "DATA/"))
             if s not in ("--data",)]
    specs = specs[: specs.index("--synthetic-lines")]
    mixture = [m.replace(_bench().DATA + "/", "DATA/") for m in _bench().MIXTURE]
    assert mixture == specs


def test_step_benchmark_mixture_mode_times_all_three_steps():
    bench = _bench()
    if not Path(bench.DATA).is_dir():
        pytest.skip(f"needs the Omniglot files in {Path(bench.DATA).resolve()} (../shared/data/omniglot)")
    r = bench.measure(1, 1, 8, 60, bench.BUNDLED, mixture=40)
    assert set(r["wall"]) == {"vrnn", "vrnn_padded", "rnn"} and all(v > 0 for v in r["wall"].values())
    assert 0.0 < r["fill"] < 1.0  # real batches: windows of uneven length, padded
