from __future__ import annotations

import re

import pytest

import lmforge.cli as cli_module
from lmforge.cli import discover_commands, main
from lmforge.errors import CorpusError
from lmforge.recipes import Command


def test_help_lists_each_verb_with_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for command in discover_commands():
        assert command.name in text
        assert command.help.split()[0] in text


def test_no_arguments_prints_help(cli):
    code, out, _ = cli()
    assert code == 0 and "verbs" in out


def test_unknown_verb_is_one_line_error(cli_process):
    result = cli_process("frobnicate")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid choice" in lines[0] and "--help" in lines[0]
    assert "Traceback" not in result.stderr


def _failing_command(error: Exception) -> Command:
    def run(args):
        raise error

    def configure(parser):
        parser.add_argument("--x", type=int, default=0, help="an option")

    return Command(name="fail", help="always fails", configure=configure, run=run, takes_overrides=True)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            CorpusError("data.txt: byte 8 (line 2) is not valid UTF-8"),
            "lmforge fail: error: data.txt: byte 8",
        ),
        (FileNotFoundError(2, "No such file or directory", "x.json"), "No such file or directory: x.json"),
    ],
)
def test_user_errors_are_one_line_and_debug_shows_traceback(monkeypatch, cli, error, expected):
    monkeypatch.setattr(cli_module, "discover_commands", lambda: [_failing_command(error)])
    code, out, err = cli("fail")
    assert code == 2
    assert err.strip().splitlines() == [err.strip()] and expected in err
    with pytest.raises(type(error)):
        main(["fail", "--debug"])


def test_overrides_reach_the_command(monkeypatch, cli):
    seen = {}

    def run(args):
        seen["overrides"] = args.overrides
        seen["x"] = args.x

    command = _failing_command(RuntimeError())
    command = Command(command.name, command.help, command.configure, run, takes_overrides=True)
    monkeypatch.setattr(cli_module, "discover_commands", lambda: [command])
    assert cli("fail", "--x", "3", "--train.lr=0.1", "--model.n-layer", "2")[0] == 0
    assert seen == {"overrides": ["train.lr=0.1", "model.n_layer=2"], "x": 3}


def test_bad_option_value_is_one_line(monkeypatch, cli_process):
    result = cli_process("quickstart", "--minutes", "soon")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "--minutes" in result.stderr


@pytest.mark.usefixtures("one_torch_thread")  # a 2.2M-parameter model: see conftest.py
def test_quickstart_runs_every_stage_and_writes_its_report(cli, tmp_path):
    """The whole quickstart on 0.3 MB of the corpus with a 1.2-second training budget: every stage runs and
    writes its files, whatever the model learns in a step or two (the tokenizer stage has its own test)."""
    run = tmp_path / "run"
    code, out, err = cli(
        "quickstart", "--minutes", "0.02", "--corpus-mb", "0.3", "--skip-tokenizers", "--out", run
    )
    assert code == 0, err
    train_tokens = int(re.search(r"shards: ([\d,]+) train", out).group(1).replace(",", ""))
    assert train_tokens < 400_000  # 0.3 MB and the file that crosses it (all 4 MB: 1.3M tokens)
    assert "torch" in out and "standard library" in out and ".py files" in out
    assert "validation: loss" in out and "bits per byte" in out and "code completions" in out
    for name in (
        "README.md",
        "samples.txt",
        "metrics.jsonl",
        "loss.png",
        "model/model.safetensors",
        "model/tokenizer.json",
    ):
        assert (run / name).is_file(), name
    report = (run / "README.md").read_text()
    assert "## Pre-training" in report and "def " in (run / "samples.txt").read_text()


@pytest.mark.parametrize("minutes, expected", [("1", "quickstart --minutes 1"), ("", "quickstart")])
def test_make_demo_passes_minutes_to_quickstart(minutes, expected):
    """`make demo MINUTES=1` (the README's short demo) runs `lmforge quickstart --minutes 1`."""
    import shutil
    import subprocess
    from pathlib import Path

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    repo = Path(__file__).resolve().parents[1]
    variables = [f"MINUTES={minutes}"] if minutes else []
    dry_run = subprocess.run(
        ["make", "-n", "--no-print-directory", "demo", *variables],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    command = dry_run.stdout.strip().splitlines()[-1]
    assert command.split("/")[-1].strip() == f"lmforge {expected}"


def test_verbs_have_distinct_names_and_help():
    commands = discover_commands()
    names = [c.name for c in commands]
    assert len(names) == len(set(names))
    assert all(c.help and "\n" not in c.help for c in commands)


def test_help_does_not_import_torch():
    """`lmforge --help` must stay instant: verb modules import heavy libraries inside `run` only."""
    import subprocess
    import sys

    code = "import sys, lmforge.cli; lmforge.cli.discover_commands(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
