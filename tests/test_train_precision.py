"""`precision: auto` and the set-up before the loop: the bf16 decision from measured timings, the per-machine
probe cache, the model-step check, the warning for a slow explicit bf16, progress while measuring, and an
explicit max_steps winning over fit_steps_to_minutes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from lmforge.errors import ConfigError
from lmforge.train import precision as precision_
from lmforge.train.budget import explicit_steps_win, measure_step_seconds, plan_training, settle_precision
from lmforge.train.config import TrainConfig
from lmforge.train.precision import (
    MatmulProbe,
    bf16_pays,
    choose_precision,
    cpu_matmul_probe,
    read_probe,
    time_matmul,
)

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
# The AMD EPYC without AVX-512 (2048x256x1024: 22 ms fp32, 1,633 ms bf16 autocast) and a Xeon with AMX.
EMULATED = MatmulProbe("AMD EPYC | torch 2.13 | 2 threads", 0.022, 1.633)
NATIVE = MatmulProbe("Intel Xeon (AMX) | torch 2.13 | 2 threads", 0.0049, 0.00069)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def never_probe() -> MatmulProbe:
    raise AssertionError("this choice must not measure anything")


@pytest.mark.parametrize(
    "fp32, bf16, pays",
    [(0.022, 1.633, False), (0.0049, 0.00069, True), (0.010, 0.0095, False), (0.010, 0.009, True)],
)
def test_bf16_only_when_measured_at_least_ten_percent_faster(fp32, bf16, pays):
    assert bf16_pays(fp32, bf16) is pays


def test_auto_on_a_cpu_that_emulates_bf16_trains_in_fp32_and_says_why():
    choice = choose_precision("auto", CPU, lambda: EMULATED)
    assert choice.precision == "fp32" and choice.warning is None
    assert (
        "74.2x slower" in choice.reason
        and "22 ms in fp32" in choice.reason
        and "1,633 ms under bf16" in choice.reason
    )
    assert "\n" not in choice.reason


def test_auto_on_a_cpu_with_bf16_units_trains_in_bf16():
    choice = choose_precision("auto", CPU, lambda: NATIVE)
    assert choice.precision == "bf16" and "7.1x faster" in choice.reason and choice.warning is None


def test_explicit_bf16_is_kept_but_warned_about_with_the_ratio_when_slow():
    slow = choose_precision("bf16", CPU, lambda: EMULATED)
    assert slow.precision == "bf16" and "74.2x slower than fp32" in slow.warning and "\n" not in slow.warning
    assert choose_precision("bf16", CPU, lambda: NATIVE).warning is None


def test_explicit_fp32_measures_nothing_and_fp16_needs_cuda():
    assert choose_precision("fp32", CPU, never_probe).precision == "fp32"
    with pytest.raises(ConfigError, match="fp16 needs CUDA"):
        choose_precision("fp16", CPU, never_probe)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_on_cuda_follows_the_capability_without_a_probe():
    choice = choose_precision("auto", torch.device("cuda"), never_probe)
    assert choice.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")


def test_the_probe_is_measured_once_cached_atomically_and_read_back(tmp_path):
    cache = tmp_path / "cache"
    path = cache / "precision.json"
    cache.mkdir()
    path.write_text(
        json.dumps({"another machine | torch 1.0 | 4 threads": {"fp32_seconds": 1, "bf16_seconds": 2}})
    )
    measured = cpu_matmul_probe(cache, measure=lambda: time_matmul((64, 64, 64), repeats=2))
    assert measured.fp32_seconds > 0 and measured.bf16_seconds > 0
    assert measured.machine == precision_.machine_key() and torch.__version__ in measured.machine
    entries = json.loads(path.read_text())
    assert set(entries) == {"another machine | torch 1.0 | 4 threads", measured.machine}  # the other kept
    assert sorted(os.listdir(cache)) == ["precision.json"]  # no temporary file left behind

    def fail() -> tuple[float, float]:
        raise AssertionError("a cached probe must not be measured again")

    assert cpu_matmul_probe(cache, measure=fail) == measured
    assert read_probe(path, "an unknown machine") is None


def test_a_cache_write_that_fails_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "precision.json"
    before = json.dumps({"old | torch 1 | 1 threads": {"fp32_seconds": 1.0, "bf16_seconds": 1.0}})
    path.write_text(before)

    def interrupted(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", interrupted)
    precision_.write_probe(path, NATIVE)  # a cache that cannot be written costs a probe later, no error
    assert path.read_text() == before and sorted(os.listdir(tmp_path)) == ["precision.json"]


def test_a_corrupt_cache_is_measured_again(tmp_path):
    (tmp_path / "precision.json").write_text("{not json")
    probe = cpu_matmul_probe(tmp_path, measure=lambda: (0.002, 0.001))
    assert probe.speedup == 2.0 and read_probe(tmp_path / "precision.json", probe.machine) == probe


class TinyObjective:
    """A next-token loss on random ids: enough to time a step."""

    def train_batch(self, index, batch_size, rank, world_size):
        generator = torch.Generator().manual_seed(index)
        return {"input_ids": torch.randint(0, 50, (batch_size, 16), generator=generator)}

    def loss(self, model, batch):
        logits = model(batch["input_ids"])
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["input_ids"].flatten())


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Embedding(50, 32), torch.nn.Linear(32, 50))


def test_auto_never_runs_a_bf16_step_where_bf16_matmuls_are_slow():
    lines: list[str] = []
    config, step = settle_precision(
        tiny_model(), TinyObjective(), TrainConfig(progress=False), lines.append, lambda: EMULATED
    )
    assert config.precision == "fp32" and step is None
    assert len(lines) == 1 and lines[0].startswith(
        "precision: auto: fp32, since bf16 autocast is 74.2x slower"
    )


def test_auto_keeps_bf16_only_if_the_models_own_step_is_faster_too():
    """Where matmuls are faster in bf16, both steps of the model are timed and the faster is kept (an LSTM's
    step is slower under bf16 autocast on CPUs whose matmuls are 7x faster)."""
    lines: list[str] = []
    model = tiny_model()
    before = [p.detach().clone() for p in model.parameters()]
    config, step = settle_precision(
        model, TinyObjective(), TrainConfig(progress=False), lines.append, lambda: NATIVE
    )
    assert len(lines) == 1 and "this model's step is" in lines[0] and "ms vs" in lines[0]
    assert lines[0].startswith(f"precision: auto: {config.precision}, since") and step > 0
    assert all(
        torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)
    )  # weights untouched


def test_a_slow_explicit_bf16_is_warned_about_once(monkeypatch):
    monkeypatch.setattr(precision_, "_warned", set())
    lines: list[str] = []
    for _ in range(2):  # the recipe, then the loop it starts
        config, _ = settle_precision(
            tiny_model(),
            TinyObjective(),
            TrainConfig(precision="bf16", progress=False),
            lines.append,
            lambda: EMULATED,
        )
    assert config.precision == "bf16"
    assert lines == [f"warning: {choose_precision('bf16', CPU, lambda: EMULATED).warning}"]


def test_measuring_the_step_shows_progress(capsys):
    config = TrainConfig(batch_size=4, precision="fp32")
    seconds = measure_step_seconds(tiny_model(), TinyObjective(), config, repeats=2)
    assert seconds > 0 and "measuring the step (fp32)" in capsys.readouterr().err


def test_the_schedule_is_fitted_to_the_minutes_from_the_measured_step():
    lines: list[str] = []
    config = TrainConfig(max_minutes=2, warmup_steps=100, precision="fp32", progress=False)
    fitted = plan_training(tiny_model(), TinyObjective(), config, fit_to_minutes=True, log=lines.append)
    assert (
        fitted.schedule_follows_time
        and fitted.max_steps >= 10
        and fitted.warmup_steps <= fitted.max_steps // 10
    )
    assert lines[-1].startswith(f"schedule: {fitted.max_steps:,} steps of")
    assert (
        plan_training(tiny_model(), TinyObjective(), config, fit_to_minutes=False, log=lines.append) == config
    )


def test_an_explicit_max_steps_wins_over_fit_steps_to_minutes():
    from lmforge.config import load_config
    from lmforge.pretrain import PretrainConfig

    preset = REPO / "configs" / "gpt-char-shakespeare.yaml"
    config = load_config(PretrainConfig, preset, ["--train.max_steps=50"])
    assert config.fit_steps_to_minutes
    won, note = explicit_steps_win(config, ["--train.max_steps=50"])
    assert not won.fit_steps_to_minutes and won.train.max_steps == 50 and "train.max_steps=50" in note
    both = ["--train.max_steps=50", "fit_steps_to_minutes=true"]
    assert explicit_steps_win(load_config(PretrainConfig, preset, both), both) == (
        load_config(PretrainConfig, preset, both),
        None,
    )
    assert explicit_steps_win(load_config(PretrainConfig, preset), []) == (
        load_config(PretrainConfig, preset),
        None,
    )


@pytest.mark.parametrize("verb, preset", [("pretrain", "gpt-char-shakespeare"), ("finetune", "sst2-minilm")])
def test_cli_max_steps_turns_off_the_fitted_schedule_and_says_so(cli, verb, preset):
    code, out, err = cli(
        verb, "--config", REPO / "configs" / f"{preset}.yaml", "--train.max_steps=7", "--print-config"
    )
    assert code == 0 and "fit_steps_to_minutes: false" in out and "max_steps: 7" in out
    assert "train.max_steps=7 given: the schedule is not fitted to train.max_minutes" in err


def test_no_shipped_preset_hard_codes_bf16():
    """A preset runs on any machine: `auto` takes bf16 where it is measured faster (75x slower elsewhere)."""
    for path in sorted((REPO / "configs").glob("*.yaml")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not line.split("#")[0].strip().startswith("precision: bf16"), f"{path.name}:{number}"
