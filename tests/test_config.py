from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from lmforge.config import (
    Count,
    CountOrZero,
    apply_overrides,
    dump_yaml,
    from_dict,
    leaf_fields,
    least_of,
    load_config,
    split_overrides,
)
from lmforge.errors import ConfigError, MissingFileError


@dataclass
class Optim:
    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.95)
    schedule: Literal["cosine", "linear"] = "cosine"


@dataclass
class Model:
    n_layer: int = 2
    name: str = "gpt-tiny"
    dropout: float | None = None


@dataclass
class Run:
    model: Model = field(default_factory=Model)
    optim: Optim = field(default_factory=Optim)
    compile: bool = False
    files: list[str] = field(default_factory=list)
    out: Path = Path("runs/x")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_when_no_file():
    assert load_config(Run) == Run()


def test_yaml_fills_nested_sections_and_converts_types(tmp_path):
    path = write(
        tmp_path,
        "model:\n  n_layer: 4\n  dropout: 0\noptim:\n  lr: 1e-3\n  betas: [0.8, 0.99]\ncompile: true\n"
        "files: [a.txt, b.txt]\nout: runs/y\n",
    )
    run = load_config(Run, path)
    assert run.model.n_layer == 4 and run.model.name == "gpt-tiny"
    assert run.model.dropout == 0.0 and isinstance(run.model.dropout, float)
    assert run.optim.lr == 1e-3  # YAML 1.1 reads `1e-3` as a string; a float field takes it
    assert run.optim.betas == (0.8, 0.99)
    assert run.compile is True and run.files == ["a.txt", "b.txt"] and run.out == Path("runs/y")


def test_overrides_apply_after_yaml(tmp_path):
    path = write(tmp_path, "optim:\n  lr: 0.1\n")
    run = load_config(
        Run, path, ["--optim.lr=0.5", "model.name=123", "--model.n_layer=8", "--optim.schedule=linear"]
    )
    assert run.optim.lr == 0.5
    assert run.model.name == "123"  # string fields keep the text as written
    assert run.model.n_layer == 8
    assert run.optim.schedule == "linear"


def test_split_overrides_from_argv():
    overrides, rest = split_overrides(
        ["pretrain", "--config", "x.yaml", "--optim.lr=1e-3", "--model.n-layer", "4", "--debug"]
    )
    assert overrides == ["optim.lr=1e-3", "model.n_layer=4"]
    assert rest == ["pretrain", "--config", "x.yaml", "--debug"]
    assert load_config(Run, None, overrides).model.n_layer == 4


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("model:\n  n_layers: 4\n", ["model.n_layers", "n_layer", "name", "dropout"]),
        ("modle:\n  n_layer: 4\n", ["modle", "model", "optim", "compile"]),
        ("model:\n  n_layer: four\n", ["model.n_layer", "integer", "four"]),
        ("model:\n  n_layer: 4.5\n", ["model.n_layer", "integer"]),
        ("compile: 1\n", ["compile", "true or false"]),
        ("optim:\n  schedule: step\n", ["optim.schedule", "cosine", "linear"]),
        ("optim:\n  betas: [0.9]\n", ["optim.betas", "2 items"]),
        ("model: 3\n", ["model", "mapping"]),
        ("- a\n- b\n", ["top level", "mapping"]),
        ("model:\n  n_layer: [4\n", ["c.yaml:3", "not valid YAML"]),
    ],
)
def test_yaml_errors_name_the_key_and_the_choices(tmp_path, text, needles):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(Run, path)
    message = str(info.value)
    for needle in needles:
        assert needle in message, (needle, message)


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ("--optim.lrr=1", ["command line", "optim.lrr", "lr, betas, schedule"]),
        ("--optim.lr=fast", ["optim.lr", "number", "fast"]),
        ("--model=3", ["model", "mapping"]),
        ("--compile.x=1", ["compile", "not a section"]),
        ("--optim.lr", ["--section.key=value"]),
    ],
)
def test_override_errors(override, needles):
    with pytest.raises(ConfigError) as info:
        apply_overrides(Run(), [override])
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(MissingFileError, match="config file not found"):
        load_config(Run, tmp_path / "nope.yaml")


def test_post_init_checks_become_config_errors():
    @dataclass
    class Checked:
        steps: int = 1

        def __post_init__(self):
            if self.steps <= 0:
                raise ValueError(f"steps must be positive, got {self.steps}")

    with pytest.raises(ConfigError, match="steps must be positive"):
        from_dict(Checked, {"steps": 0})


@dataclass
class Counted:
    limit: Count | None = None
    beams: Count = 4
    warmup: CountOrZero = 0
    steps: list[Count] = field(default_factory=list)


@dataclass
class CountedRun:
    data: Counted = field(default_factory=Counted)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("--data.limit=-5", "command line: 'data.limit' must be at least 1, got -5"),
        ("--data.beams=0", "command line: 'data.beams' must be at least 1, got 0"),
        ("--data.warmup=-1", "command line: 'data.warmup' must be at least 0, got -1"),
        ("--data.steps=[3, -2]", "command line: 'data.steps[1]' must be at least 1, got -2"),
        ("--data.limit=many", "command line: 'data.limit' must be int or NoneType, got str 'many'"),
    ],
)
def test_a_count_below_its_least_is_the_keys_error(override, message):
    with pytest.raises(ConfigError) as error:
        load_config(CountedRun, None, [override])
    assert str(error.value) == message


def test_counts_from_yaml_and_their_valid_edges(tmp_path):
    with pytest.raises(ConfigError, match=r"c.yaml: 'data.limit' must be at least 1, got -5$"):
        load_config(CountedRun, write(tmp_path, "data:\n  limit: -5\n"))
    run = load_config(CountedRun, None, ["--data.limit=null", "--data.beams=1", "--data.warmup=0"])
    assert (run.data.limit, run.data.beams, run.data.warmup) == (None, 1, 0)


def test_data_max_train_examples_minus_five_is_refused_as_the_option():
    """`--data.max_train_examples=-5` used to read no examples and report "train.tsv: no examples"."""
    from lmforge.finetune import FinetuneConfig

    with pytest.raises(ConfigError) as error:
        load_config(FinetuneConfig, None, ["--data.max_train_examples=-5"])
    assert str(error.value) == "command line: 'data.max_train_examples' must be at least 1, got -5"


def _holds_int(tp) -> bool:
    import typing

    return tp is int or any(_holds_int(a) for a in typing.get_args(tp))


def test_every_count_in_every_verbs_config_states_its_least():
    """The class of the bug: an int field without a bound takes -5 and fails later, somewhere else. Every int
    field of the configs the verbs load (discovered through `Command.config`) must be a `Count` or a
    `CountOrZero`."""
    from lmforge.cli import discover_commands

    configs = {c.name: c.config for c in discover_commands() if c.config is not None}
    assert {"pretrain", "finetune"} <= set(configs)
    unbounded = [
        f"{verb}: {key}"
        for verb, cls in configs.items()
        for key, tp in leaf_fields(cls)
        if _holds_int(tp) and least_of(tp) is None and "list" not in str(tp)
    ]
    assert unbounded == []


def test_dump_round_trip(tmp_path):
    run = load_config(Run, None, ["--optim.lr=0.01", "--files=[x, y]"])
    path = write(tmp_path, dump_yaml(run))
    assert load_config(Run, path) == run
