"""The training loop: :class:`Trainer`.

What a run does, in order: preprocess every ink once, fit the offset normalizer on the
training inks (a fine-tuned model keeps its base's), cut training windows and pad them
into one tensor (:mod:`.windows`), then loop: a seeded permutation of the windows per
epoch (sharded by rank under DDP), Adam with a linear warm-up and cosine learning-rate
decay over the budget, a linear KL warm-up (optional free bits) (:mod:`.schedules`),
gradient-norm clipping before ``optimizer.step()``, and a guard that skips a batch whose
loss or gradient is NaN/inf (reported, weights untouched). Every ``eval_every`` steps
the validation ELBO is measured (fixed noise, so evaluations compare); the best weights
are kept and training stops early after ``patience`` evaluations without improvement
(counted only once the KL warm-up is over). Facts about the run live in its
:class:`~.state.RunState`; what it shows and logs is :class:`~.report.RunOutput`'s.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import torch

from ..datasets import DataError
from ..ink import Ink
from ..model import VRNNConfig, add_aux_head, build_model, copy_model
from ..preprocess import Normalizer, PreprocessConfig
from .distributed import Dist, pick_device
from .errors import TrainingError
from .options import TrainOptions, resume_changes
from .report import Progress, RunOutput, StatsWindow
from .schedules import kl_warm, kl_weight, lr_factor
from .state import RunState, load_train_state, optimizer_from_flat, optimizer_to_flat, save_train_state
from .windows import WindowSet, build_windows, epoch_order, mixture_order, prepare_inks, shard, validation_windows

#: Fixed seed of the validation noise (plus the rank), so evaluations compare.
VALID_SEED = 12345


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _per_point(kl: float, nll: float, points: float) -> dict:
    """Summed validation terms as the per-point numbers a validation record holds."""
    pts = max(points, 1.0)
    return {"elbo_per_point": -(kl + nll) / pts, "kl_per_point": kl / pts, "nll_per_point": nll / pts,
            "points": int(pts)}


class Trainer:
    """One training run; :meth:`run` trains and returns the best model.

    ``out``: the directory for checkpoints and logs (``None``: keep everything in memory).
    ``resume``: continue from ``out``'s ``train_state.safetensors``: its config, options
    and normalizer win; ``options_override`` may change the options in
    :data:`~vrnn.training.options.RESUMABLE` (others raise :class:`TrainingError`).
    ``base_model``: fine-tune a copy of it (with its normalizer); it is never changed.
    ``card``: what the run trains on (data spec, command...), kept in the model card.
    ``sources`` and ``weights``: a mixture of data sources; ``sources[i]`` is the source
    index of ``train_inks[i]`` and ``weights[k]`` source ``k``'s share of every epoch's
    windows (:func:`~vrnn.training.windows.mixture_order`). Without them every training
    window is visited once per epoch. ``valid_sources``: the source of each validation ink
    (a mixture's validation then also reports each source's ELBO, ``by_source``).
    """

    def __init__(
        self,
        train_inks: list[Ink],
        valid_inks: list[Ink],
        *,
        config: VRNNConfig | None = None,
        options: TrainOptions | None = None,
        out: str | Path | None = None,
        resume: bool = False,
        base_model=None,
        card: dict | None = None,
        dist: Dist | None = None,
        options_override: dict | None = None,
        log: Callable[[str], None] | None = None,
        sources: Sequence[int] | None = None,
        weights: Sequence[float] | None = None,
        valid_sources: Sequence[int] | None = None,
    ):
        self.dist = dist or Dist()
        self.out = Path(out) if out is not None else None
        self._log = log or _to_stderr
        tensors, stored = self._stored_state(resume)
        if stored is not None:
            options = resume_changes(TrainOptions.from_dict(stored["options"]), options_override or {})
            config = VRNNConfig.from_dict(stored["config"])
            base_model = None
        self.options = o = (options or TrainOptions()).budget_defaults()
        self.device = pick_device(o.device, self.dist)
        self.model = self._new_model(config, base_model, stored)
        self.weights = self._mixture_weights(train_inks, sources, weights)
        self.train, self.valid = self._windows(train_inks, valid_inks, sources, valid_sources)
        per_rank = len(self.train) // self.dist.world
        if per_rank == 0:
            raise DataError(f"{len(self.train)} training windows cannot be shared by {self.dist.world} processes")
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self._rank_seed(0))
        self.best_state: dict[str, torch.Tensor] | None = None
        self.state = RunState(
            options=o, config=self.model.config.to_dict(), source=dict(card or {}),
            parameters=self.model.num_parameters(), world_size=self.dist.world, device=self.device.type,
            train_inks=len(train_inks), valid_inks=len(valid_inks),
            data=[len(self.train), self.train.points, len(self.valid), self.valid.points],
            steps_per_epoch=math.ceil(per_rank / o.batch_size), mixture=self.weights,
        )
        if stored is not None:
            self._restore(tensors, stored)
        self.net = self.dist.wrap(self.model, self.device)  # DDP averages gradients inside backward

    # ------------------------------------------------------------------ set-up
    def _stored_state(self, resume: bool) -> tuple[dict, dict | None]:
        if not resume:
            return {}, None
        if self.out is None:
            raise TrainingError("resume needs an output directory")
        return load_train_state(self.out)

    def _rank_seed(self, step: int) -> int:
        return self.options.seed * 1_000_003 + 7919 * (self.dist.rank + 1) + step

    def _new_model(self, config: VRNNConfig | None, base_model, stored: dict | None):
        """The model to train, with its preprocessing (its normalizer is fitted in :meth:`_windows` when new)."""
        if base_model is not None:
            model = copy_model(base_model, device=self.device)  # never train the caller's model
            model.card = {}
            return self._with_aux(model)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's global RNG
            torch.manual_seed(self.options.seed)
            model = self._with_aux(build_model(config or VRNNConfig()).to(self.device))
        if stored is not None:
            model.normalizer = Normalizer.from_dict(stored["normalizer"])
            model.preprocess_config = PreprocessConfig.from_dict(stored["preprocess"])
        else:
            model.normalizer, model.preprocess_config = None, PreprocessConfig()
        return model

    def _with_aux(self, model):
        """``model`` with the auxiliary head that ``--aux-weight`` trains (added when missing); without
        ``--aux-weight`` a head the model came with is dropped (it would get no gradient, which DDP refuses)."""
        if not self.options.aux_weight:
            if getattr(model, "aux", None) is not None:
                model.aux = None
                model.config = replace(model.config, aux_hidden=0)
            return model
        if model.config.model != "vrnn":
            raise TrainingError("--aux-weight needs a VRNN (the RNN-GMM has no latent)")
        return add_aux_head(model, seed=self.options.seed)

    @staticmethod
    def _mixture_weights(train_inks: list[Ink], sources, weights) -> list[float] | None:
        """The sources' shares of an epoch (they sum to 1), or ``None`` for one source."""
        if sources is None and weights is None:
            return None
        if sources is None or weights is None or len(sources) != len(train_inks):
            raise ValueError("a mixture needs both sources (one per training ink) and weights (one per source)")
        if any(not (w > 0 and math.isfinite(w)) for w in weights) or max(sources, default=0) >= len(weights):
            raise ValueError(f"mixture weights must be positive, one per source: {list(weights)}")
        if len(weights) == 1:
            return None
        return [float(w) / float(sum(weights)) for w in weights]

    def _by_source(self, inks: list[Ink], sources) -> list[list[Ink]]:
        """``inks`` grouped by their source (one group without a mixture)."""
        if not self.weights:
            return [list(inks)]
        if sources is None or len(sources) != len(inks):
            raise ValueError("a mixture needs the source of every ink (sources, valid_sources)")
        groups: list[list[Ink]] = [[] for _ in self.weights]
        for ink, k in zip(inks, sources):
            groups[k].append(ink)
        return groups

    def _windows(self, train_inks: list[Ink], valid_inks: list[Ink], sources,
                 valid_sources) -> tuple[WindowSet, WindowSet]:
        o, pre = self.options, self.model.preprocess_config
        offsets = [prepare_inks(inks, pre) for inks in self._by_source(train_inks, sources)]
        if not any(offsets):
            raise DataError("no training ink has 2 or more points after preprocessing")
        if self.model.normalizer is None:
            self.model.normalizer = Normalizer.fit([off for part in offsets for off in part])
        parts = [build_windows(off, self.model.normalizer, o.max_len, o.min_len, source=k)
                 for k, off in enumerate(offsets)]
        empty = [k for k, part in enumerate(parts) if len(part) == 0]
        if len(empty) == len(parts):
            raise DataError(f"no training window of at least {o.min_len} points (lower --min-len or add longer inks)")
        if self.weights and empty:
            raise DataError(f"data source {empty[0] + 1} of the mixture has no training window of at least "
                            f"{o.min_len} points")
        train = WindowSet.concat(parts) if len(parts) > 1 else parts[0]
        # a mixture's validation inks by source when their sources are known, else one pool
        valid_groups = self._by_source(valid_inks, valid_sources) if valid_sources is not None else [valid_inks]
        self.valid_sources = len(valid_groups)
        valid = validation_windows([prepare_inks(inks, pre) for inks in valid_groups], self.model.normalizer,
                                   max_len=o.max_len, min_len=o.min_len, cap=o.max_valid_windows)
        return train, valid

    def _restore(self, tensors: dict[str, torch.Tensor], stored: dict) -> None:
        note = self.state.resume_from(stored)
        if note:
            self._log(note)

        def strip(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

        try:
            self.model.load_state_dict(strip("model."))
            optimizer_from_flat(self.optimizer, tensors, stored["optimizer"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise TrainingError(f"the checkpoint does not fit this model: {' '.join(str(e).split())[:300]}") from e
        self.best_state = strip("best.") or None
        if self.dist.is_main:  # other ranks draw fresh noise: it is theirs, not rank 0's
            self.generator.set_state(tensors["rng.generator"])
        else:
            self.generator.manual_seed(self._rank_seed(self.state.step))

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """The training windows of ``epoch``, in order (all ranks; each takes its shard)."""
        if self.weights is None:
            return epoch_order(len(self.train), self.options.seed, epoch)
        return mixture_order(self.train.source, self.weights, self.options.seed, epoch)

    # ------------------------------------------------------------------ one step
    def _train_step(self, idx: torch.Tensor, stop_flag: float) -> tuple[bool, dict]:
        """Forward, backward, clip, step. Returns whether it was finite and the step's summed stats (all ranks)."""
        o, st = self.options, self.state
        t0 = time.perf_counter()
        # longest window first: the VRNN's loop then stops stepping each row at its end
        # (vrnn.fused.active_rows); the loss is a sum over rows, so their order is free
        idx = idx[torch.argsort(self.train.lengths[idx], descending=True, stable=True)]
        x, m = self.train.batch(idx, self.device)
        lr = o.lr * lr_factor(st.step, st.fraction(), o.warmup_steps, o.min_lr_ratio)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        kw = kl_weight(st.step, o.kl_warmup_steps)
        t1 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        aux = {"aux_weight": o.aux_weight} if o.aux_weight else {}  # the RNN-GMM has no such keyword
        out = self.net(x, m, generator=self.generator, kl_weight=kw, free_bits=o.free_bits,
                       free_bits_mode=o.free_bits_mode, **aux)
        out.loss.backward()
        # every rank sees the same averaged gradients, so every rank gets the same norm
        gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), o.clip_norm)
        pts = out.points.detach().float()
        stats = torch.stack([out.kl.detach().sum(), out.nll.detach().sum(), pts, out.loss.detach() * pts,
                             gnorm.detach().float(), torch.tensor(stop_flag, device=gnorm.device)])
        self.dist.all_sum(stats)
        kl_s, nll_s, pts_s, loss_s, gn, stop = stats.tolist()
        finite = all(math.isfinite(v) for v in (kl_s, nll_s, loss_s, gn))
        if finite:
            self.optimizer.step()
        t2 = time.perf_counter()
        st.timing["data_s"] += t1 - t0
        st.timing["compute_s"] += t2 - t1
        return finite, {"kl": kl_s, "nll": nll_s, "points": pts_s, "loss": loss_s, "grad_norm": gn / self.dist.world,
                        "lr": lr, "kl_weight": kw, "stop": stop > 0}

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def evaluate_valid(self) -> dict | None:
        """Validation ELBO per point (fixed noise), summed over ranks; ``None`` without validation data."""
        if len(self.valid) == 0:
            return None
        t0 = time.perf_counter()
        was_training = self.model.training
        self.model.eval()
        gen = torch.Generator(device=self.device)
        gen.manual_seed(VALID_SEED + self.dist.rank)
        n_sources = self.valid_sources
        sums = torch.zeros(n_sources, 3, dtype=torch.float64, device=self.device)
        mine = torch.arange(self.dist.rank, len(self.valid), self.dist.world)
        bs = max(64, 4 * self.options.batch_size)
        for k in range(n_sources):  # batches never mix sources: each source's sums are its own
            rows = mine[self.valid.source[mine] == k]
            for i in range(0, len(rows), bs):
                x, m = self.valid.batch(rows[i : i + bs], self.device)
                out = self.model(x, m, generator=gen)
                sums[k] += torch.stack([out.kl.sum(), out.nll.sum(), out.points.float()]).double()
        self.dist.all_sum(sums)
        self.model.train(was_training)
        self.state.timing["valid_s"] += time.perf_counter() - t0
        v = {"step": self.state.step, **_per_point(*sums.sum(0).tolist())}
        if n_sources > 1:
            v["by_source"] = [_per_point(*row) if row[2] > 0 else None for row in sums.tolist()]
        return v

    def _validate(self, ui: RunOutput) -> None:
        v = self.evaluate_valid()
        if v is None:
            return
        st = self.state
        if st.note_validation(v, kl_warm=kl_warm(st.step, self.options.kl_warmup_steps)):
            self.best_state = {k: t.detach().to("cpu", copy=True) for k, t in self.model.state_dict().items()}
        elif st.patience_exhausted() and st.stop_reason is None:
            st.stop_reason = "early_stopping"
        ui.valid_record(st.last_valid)

    # ------------------------------------------------------------------ checkpoints
    def best_model(self):
        """The model with the best validation weights (the last ones when never validated), as a copy."""
        m = copy_model(self.model)
        if self.best_state is not None:
            m.load_state_dict(self.best_state)
        m.card = self.state.card()
        return m.eval()

    def checkpoint(self, ui: RunOutput) -> None:
        """Export the best model and write the training state (rank 0, when there is an ``out``)."""
        if self.out is None or not self.dist.is_main:
            return
        t0 = time.perf_counter()
        best = self.best_model()
        best.save(self.out, card=best.card)  # per-file atomic; config.json (last) holds the weights' checksum
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self.best_state is not None:
            tensors.update({f"best.{k}": v for k, v in self.best_state.items()})
        opt_tensors, opt_meta = optimizer_to_flat(self.optimizer)
        tensors.update(opt_tensors)
        tensors["rng.generator"] = self.generator.get_state()
        self.state.metrics_bytes = ui.metrics.sync()
        state = {**self.state.to_json(), "normalizer": self.model.normalizer.to_dict(),
                 "preprocess": self.model.preprocess_config.to_dict(), "optimizer": opt_meta}
        save_train_state(self.out, tensors, state)
        self.state.timing["checkpoint_s"] += time.perf_counter() - t0

    # ------------------------------------------------------------------ the loop
    def run(self, on_progress: Callable[[Progress], None] | None = None, stop_event: threading.Event | None = None):
        """Train until a budget, early stopping or ``stop_event``; checkpoint; return the best model."""
        o, d, st = self.options, self.dist, self.state
        st.start_segment()
        if self.out is not None and d.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        ui = RunOutput(st, out=self.out, main=d.is_main, on_progress=on_progress, log=self._log,
                       progress_bar=o.progress_bar, tensorboard=o.tensorboard)
        try:
            ui.say_start()
            self._loop(ui, stop_event)
            if st.last_valid is None or st.last_valid.get("step") != st.step:
                self._validate(ui)
            ui.metrics.write({"kind": "summary", **st.summary()})
            self.checkpoint(ui)
            ui.report("done", message=st.summary_text(self.out))
            return self.best_model()
        finally:
            ui.close()

    def _loop(self, ui: RunOutput, stop_event: threading.Event | None) -> None:
        """Steps until a stop reason; the last training statistics are reported."""
        o, d, st = self.options, self.dist, self.state
        window = StatsWindow()
        last_ckpt_t, last_ckpt_step = time.perf_counter(), st.step
        bad_in_a_row = 0
        s: dict = {}
        self.model.train()
        st.stop_reason = st.budget_reason()
        if st.patience_exhausted():  # a resumed run that had stopped early
            st.stop_reason = "early_stopping"
        loop_t0 = time.perf_counter()
        periodic_t0 = st.timing["valid_s"] + st.timing["checkpoint_s"]
        while st.stop_reason is None:
            order = shard(self.epoch_order(st.epoch), d.rank, d.world)
            while st.batch_index < st.steps_per_epoch and st.stop_reason is None:
                idx = order[st.batch_index * o.batch_size : (st.batch_index + 1) * o.batch_size]
                finite, s = self._train_step(idx, float(stop_event is not None and stop_event.is_set()))
                tb = time.perf_counter()
                st.step += 1
                st.batch_index += 1
                if finite:
                    bad_in_a_row = 0
                    window.add(s)
                else:
                    st.skipped += 1
                    bad_in_a_row += 1
                    ui.skipped(s)
                    if bad_in_a_row >= o.max_bad_batches:
                        raise TrainingError(f"{bad_in_a_row} non-finite batches in a row: training diverged "
                                            f"(try a lower --lr); the last checkpoint is intact")
                if st.step % o.log_every == 0 and window.n:
                    ui.train_record(window, s)
                ui.advance()
                if s["stop"]:
                    st.stop_reason = "cancelled"
                if st.stop_reason is None:
                    st.stop_reason = st.budget_reason()
                te = time.perf_counter()
                st.timing["bookkeeping_s"] += te - tb
                # ---- periodic: validation, checkpoints (not counted in points/s)
                want_eval = st.step % o.eval_every == 0
                if want_eval:
                    self._validate(ui)
                timed = o.checkpoint_every and time.perf_counter() - last_ckpt_t >= o.checkpoint_every
                stepped = o.checkpoint_steps and st.step - last_ckpt_step >= o.checkpoint_steps
                if st.stop_reason is None and (want_eval or timed or stepped):
                    self.checkpoint(ui)
                    last_ckpt_t, last_ckpt_step = time.perf_counter(), st.step
                window.exclude(time.perf_counter() - te)
            if st.batch_index >= st.steps_per_epoch:  # the next epoch gets its own permutation
                st.epoch, st.batch_index = st.epoch + 1, 0
        st.timing["loop_s"] += time.perf_counter() - loop_t0
        st.timing["loop_periodic_s"] += st.timing["valid_s"] + st.timing["checkpoint_s"] - periodic_t0
        if window.n:
            ui.train_record(window, s)
