"""Token-level distillation (`lmforge.data.distill`, `distill_from` in pre-training): the loss is its formula,
a distilled student gets closer to its teacher than one trained on the text, and one vocabulary is required."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lmforge.data.clm import CLMObjective
from lmforge.data.distill import DistillObjective, distill_loss, token_kl
from lmforge.errors import ConfigError
from lmforge.generate import GenerationConfig
from test_pretrain import SMALL, four_step_runs

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: see conftest.py


def test_the_loss_is_the_kl_from_the_teacher_plus_a_share_of_cross_entropy():
    student = torch.tensor([[[1.0, 0.0, -1.0], [0.0, 2.0, 0.0]]])  # (B=1, T=2, V=3)
    teacher = torch.tensor([[[0.0, 0.0, 0.0], [3.0, 0.0, 1.0]]])
    labels = torch.tensor([[2, 1]])

    def softmax(row):
        exps = [math.exp(x) for x in row]
        return [e / sum(exps) for e in exps]

    kls, ces = [], []
    for s, t, y in zip(student[0].tolist(), teacher[0].tolist(), labels[0].tolist(), strict=True):
        p, q = softmax(t), softmax(s)
        kls.append(sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True)))
        ces.append(-math.log(q[y]))
    kl, ce = sum(kls) / 2, sum(ces) / 2
    assert float(token_kl(student, teacher)) == pytest.approx(kl, rel=1e-6)
    assert float(distill_loss(student, teacher, labels)) == pytest.approx(kl, rel=1e-6)
    assert float(distill_loss(student, teacher, labels, alpha=0.25)) == pytest.approx(
        0.25 * kl + 0.75 * ce, rel=1e-6
    )
    assert float(distill_loss(student, teacher, labels, alpha=0.0)) == pytest.approx(ce, rel=1e-6)
    assert float(token_kl(teacher, teacher)) == pytest.approx(0.0, abs=1e-7)


def _tiny(seed: int, d_model: int, n_layers: int):
    from lmforge.model import build_model, preset

    torch.manual_seed(seed)
    config = preset("gpt-tiny").replace(
        vocab_size=64, d_model=d_model, n_layers=n_layers, n_heads=2, d_ff=2 * d_model, max_positions=32
    )
    return build_model(config)


def test_a_distilled_student_gets_closer_to_its_teacher_than_one_trained_on_the_text():
    """Same student init, same batches, same steps: distillation drives the KL to the teacher (and its top-1
    agreement) well past what cross-entropy on the text reaches; its own loss falls."""
    teacher = _tiny(0, 32, 2)
    with torch.no_grad():  # a confident teacher (larger logits) whose predictions the text does not follow
        teacher.final_norm.weight.mul_(30.0)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 64, size=20_000)
    base = CLMObjective(tokens, tokens[:2_000], block_size=16, seed=1)
    held_out = next(base.eval_batches(1, 32))

    def train(objective) -> tuple[float, float, list[float]]:
        student = _tiny(1, 16, 1)
        optimizer = torch.optim.AdamW(student.parameters(), lr=1e-2)
        losses = []
        for step in range(40):
            loss = objective.loss(student, objective.train_batch(step, 16))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        with torch.no_grad():
            s, t = student(held_out["input_ids"]), teacher(held_out["input_ids"])
            s, t = getattr(s, "logits", s), getattr(t, "logits", t)
        return float(token_kl(s, t)), float((s.argmax(-1) == t.argmax(-1)).float().mean()), losses

    distilled = DistillObjective(base, teacher)
    kl_distilled, agree_distilled, losses = train(distilled)
    kl_plain, agree_plain, _ = train(base)
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    assert kl_distilled < 0.7 * kl_plain
    assert agree_distilled > agree_plain
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training
    metrics = distilled.metrics(distilled.evaluate(teacher, held_out))  # the teacher against itself
    assert metrics["val_kl"] == pytest.approx(0.0, abs=1e-5) and metrics["val_agreement"] == 1.0
    with pytest.raises(ConfigError, match="distill_alpha must lie in"):
        DistillObjective(base, teacher, alpha=1.5)


def test_distill_from_in_pretraining_reports_the_gap_and_needs_one_vocabulary(shared_data, tmp_path):
    run, small = four_step_runs(shared_data, tmp_path), SMALL
    teacher = run(f"out={tmp_path / 'teacher'}", small.format(32, 64))
    student = run(
        f"out={tmp_path / 'student'}",
        f"draft_for={teacher.model_dir}",
        f"distill_from={teacher.model_dir}",
        "distill_alpha=0.5",
        small.format(16, 32),
    )
    assert {"val_perplexity", "val_kl", "val_agreement"} <= set(student.metrics)
    assert student.metrics["val_kl"] > 0 and 0 <= student.metrics["val_agreement"] <= 1
    other = run(f"out={tmp_path / 'other'}", "tokenizer.vocab_size=280", small.format(16, 32))
    with pytest.raises(ConfigError) as error:
        run(
            f"out={tmp_path / 'bad'}",
            f"distill_from={teacher.model_dir}",
            f"tokenizer.path={other.model_dir / 'tokenizer.json'}",
        )
    assert "differ; distillation needs one vocabulary" in str(error.value)
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="differ; distillation needs one vocabulary"):
        run(
            f"out={tmp_path / 'bad'}",
            f"distill_from={teacher.model_dir}",
            f"model.init_from={other.model_dir}",
        )
    continued = run(  # continuing the distilled draft: its own tokenizer, the teacher's vocabulary
        f"out={tmp_path / 'continued'}",
        f"draft_for={teacher.model_dir}",
        f"distill_from={teacher.model_dir}",
        f"model.init_from={student.model_dir}",
    )
    assert "val_agreement" in continued.metrics
    assert GenerationConfig.load(teacher.model_dir).draft == "../../continued/model"
    with pytest.raises(ConfigError, match="differ; a draft needs its model's vocabulary"):
        run(f"out={tmp_path / 'bad'}", f"draft_for={teacher.model_dir}", f"model.init_from={other.model_dir}")
    with pytest.raises(ConfigError, match="not a model directory"):
        run(f"out={tmp_path / 'bad'}", f"distill_from={tmp_path}")


def test_under_a_bf16_autocast_the_teacher_runs_on_a_bf16_copy_and_the_loss_still_backpropagates():
    teacher, student = _tiny(0, 32, 2), _tiny(1, 16, 1)
    tokens = np.random.default_rng(0).integers(0, 64, size=2_000)
    objective = DistillObjective(CLMObjective(tokens, block_size=16), teacher)
    batch = objective.train_batch(0, 4)
    exact = objective.loss(student, batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = objective.loss(student, batch)
        assert objective.teacher_logits(batch["input_ids"]).dtype == torch.bfloat16
    fast.backward()
    assert all(p.grad is not None for p in student.parameters())
    assert float(fast.detach()) == pytest.approx(float(exact.detach()), rel=0.05)
    assert next(teacher.parameters()).dtype == torch.float32  # the teacher itself is untouched
