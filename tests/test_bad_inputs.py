"""Every verb × every bad input that applies to it: one line on stderr, exit status 2, no traceback, nothing
left behind.

The verbs are discovered from `lmforge --help` (sub-verbs too: `tokenizer train`, `embed eval`, `eval
bleu`, ...), and each verb's inputs from its parser: the metavar says what an option takes (``FILE``,
``VECTORS``, ``JSON``: a file read; ``CONFIG``: a YAML preset; ``DIR``: a model directory) and the
argparse type says a number's range (`lmforge.recipes.count`, `count_or_zero`, `positive_number`). The
only thing written here per verb is one invocation that would work (`VALID`), which the bad inputs are
swapped into; a verb without one fails `test_every_verb_has_a_valid_invocation`, so a new verb is covered
the day it lands.

The bad inputs: a missing file, an empty file, a file that is not UTF-8; a directory that is not a model, a
missing one, a run directory (the answer names its model/), a model of the wrong kind; a negative or zero
count (options and config keys); an unknown config key (command line and YAML).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest

from lmforge.cli import build_parser, discover_commands
from lmforge.config import leaf_fields, least_of
from lmforge.recipes import count, count_or_zero, positive_number

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: see conftest.py

TEXT = """the cat sat on the mat .
the dog sat on the log .
a cat and a dog met on the road .
the road was long and the day was warm .
"""
FILE_METAVARS = ("FILE", "VECTORS", "JSON")
SIGNED = {("attention", "--layer"), ("embed contextual", "--layer")}  # negative counts from the end

# One invocation per verb that works; {name} is a file or model of the `world` fixture, "..." a path in
# the (empty) working directory of the case. `wrong` gives, per model option, a model of the wrong kind.
VALID: dict[str, list[dict]] = {
    "quickstart": [{"minutes": "0.01", "out": "quickstart", "skip_tokenizers": True}],
    "tokenizer train": [
        {"kind": "bpe", "vocab_size": "300", "out": "tok.json", "files": ["{text}"]},
        {"kind": "charbpe", "vocab_size": "100", "out": "tok.json", "files": ["{text}"]},
        {"kind": "unigram", "vocab_size": "100", "out": "tok.json", "files": ["{text}"]},
    ],
    "tokenizer encode": [{"tokenizer": "{gpt}/tokenizer.json", "text": "the cat"}],
    "tokenizer compare": [{"vocab_size": "300", "min_frequency": "1", "files": ["{text}"]}],
    "embed train": [
        {
            "out": "v.txt",
            "min_count": "1",
            "dim": "8",
            "epochs": "1",
            "workers": "1",
            "quiet": True,
            "files": ["{text}"],
        },
    ],  # fmt: skip
    "embed query": [{"vectors": "{vectors}", "expression": ["cat"], "topn": "2"}],
    "embed eval": [{"vectors": "{vectors}", "analogies": "{analogies}", "pairs": ["{pairs}"]}],
    "embed plot": [{"vectors": "{vectors}", "words": ["cat", "dog", "mat"], "out": "pca.png"}],
    "embed compare": [
        {
            "methods": "cbow",
            "min_count": "1",
            "dim": "8",
            "epochs": "1",
            "workers": "1",
            "quiet": True,
            "analogies": "{analogies}",
            "pairs": ["{pairs}"],
            "files": ["{text}"],
        },
    ],  # fmt: skip
    "embed contextual": [{"model": "{bert}", "sentences": ["the cat sat"], "wrong": {"model": "{gpt}"}}],
    "prepare": [
        {"tokenizer": "{gpt}/tokenizer.json", "out": "shards", "files": ["{text}"]},
        {"tokenizer": "bytes", "out": "shards", "files": ["{text}"], "val": ["{text}"]},
    ],
    "pretrain": [{"config": "{pretrain_yaml}"}],
    "perplexity": [{"model": "{gpt}", "files": ["{text}"], "wrong": {"model": "{classifier}"}}],
    "generate": [
        {"model": "{gpt}", "prompt": "the", "max_new_tokens": "3", "wrong": {"model": "{bert}"}},
        {"model": "{gpt}", "prompts": "{text}", "max_new_tokens": "3", "wrong": {"model": "{lstm}"}},
        {
            "model": "{gpt}",
            "prompt": "the",
            "max_new_tokens": "3",
            "draft": "{gpt}",
            "wrong": {"draft": "{bert}"},
        },
    ],
    "attention": [{"model": "{gpt}", "text": "the cat", "out": "attn.png", "wrong": {"model": "{lstm}"}}],
    "convert": [
        {"from_hf": "{hf}", "out": "converted", "wrong": {"from_hf": "{gpt}"}},
        {"to_hf": "{gpt}", "out": "hf", "wrong": {"to_hf": "{hf}"}},
    ],
    "finetune": [{"config": "{finetune_yaml}", "model": "{bert}", "wrong": {"model": "{gpt}"}}],
    "classify": [{"model": "{classifier}", "file": "{text}", "wrong": {"model": "{gpt}"}}],
    "translate": [
        {"model": "{seq2seq}", "file": "{text}", "max_new_tokens": "3", "wrong": {"model": "{gpt}"}},
        {
            "model": "{seq2seq}",
            "file": "{text}",
            "num_beams": "1",
            "draft": "{seq2seq}",
            "wrong": {"draft": "{gpt}"},
        },
    ],
    "answer": [
        {"model": "{qa}", "context": "{text}", "question": ["who sat?"], "wrong": {"model": "{classifier}"}},
    ],
    "eval bleu": [{"hyp": "{text}", "ref": ["{text}"]}],
    "eval chrf": [{"hyp": "{text}", "ref": ["{text}"]}],
    "eval rouge": [{"hyp": "{text}", "ref": "{text}"}],
    "eval accuracy": [{"hyp": "{labels}", "ref": "{labels}"}],
    "eval f1": [{"hyp": "{labels}", "ref": "{labels}"}],
    "eval squad": [{"hyp": "{squad_predictions}", "data": "{squad}"}, {"hyp": "{text}", "ref": "{text}"}],
    "index build": [
        {
            "embedder": "{bert}",
            "out": "idx",
            "files": ["{text}"],
            "quiet": True,
            "wrong": {"embedder": "{gpt}"},
        },
    ],
    "index add": [
        {
            "index": "{index}",
            "files": ["{more}"],
            "quiet": True,
            "embedder": "{bert}",
            "wrong": {"embedder": "{gpt}"},
        },
    ],
    "index eval": [
        {
            "index": "{index}",
            "queries": "{queries}",
            "qrels": "{qrels}",
            "quiet": True,
            "embedder": "{bert}",
            "wrong": {"embedder": "{gpt}"},
        },
    ],  # fmt: skip
    "search": [
        {
            "index": "{index}",
            "query": "the cat",
            "k": "1",
            "embedder": "{bert}",
            "wrong": {"embedder": "{gpt}"},
        }
    ],
    "ask": [
        {
            "index": "{index}",
            "reader": "{qa}",
            "question": "who sat?",
            "k": "1",
            "embedder": "{bert}",
            "wrong": {"reader": "{bert}", "embedder": "{gpt}"},
        },
    ],  # fmt: skip
    "summarize documents": [
        {"method": "lead-1", "file": "{text}"},
        {"method": "centroid", "file": "{text}", "embedder": "{bert}", "wrong": {"embedder": "{gpt}"}},
    ],
    "summarize eval": [
        {"method": ["textrank"], "data": "{summaries}", "embedder": "{bert}", "wrong": {"embedder": "{gpt}"}},
    ],
    "analyze": [
        {
            "classifier": "{classifier}",
            "embedder": "{bert}",
            "files": ["{text}"],
            "topics": "2",
            "out": "report",
            "quiet": True,
            "wrong": {"classifier": "{gpt}", "embedder": "{gpt}"},
        },
    ],  # fmt: skip
    "serve": [
        {"model": ["{gpt}"], "port": "0"},  # --model is repeatable (append): a list
        {"index": "{index}", "reader": "{qa}", "port": "0", "wrong": {"reader": "{bert}"}},
    ],
    "humaneval create": [
        {
            "name": "t",
            "system": ["a={labels}", "b={labels}"],
            "source": "{labels}",
            "reference": "{labels}",
            "out": "s.db",
        },
    ],
    "humaneval serve": [{"study": "{study}", "port": "0"}],
    "humaneval report": [{"study": "{study}", "out": "report", "resamples": "10"}],
    "humaneval export": [{"study": "{study}", "out": "j.csv"}],
    "humaneval demo": [{"out": "demo", "raters": "2"}],
    "experiment data-efficiency": [
        {
            "pretrained": "{finetune_yaml}",
            "scratch": "{finetune_yaml}",
            "model": "{bert}",
            "fractions": "1",
            "seeds": "0",
            "steps": "2",
            "evaluations": "1",
            "no_baseline": True,
            "out": "de",
            "wrong": {"model": "{gpt}"},
        },
    ],  # fmt: skip
    "experiment static-vs-contextual": [
        {
            "elmo": "{elmo}",
            "bert": "{bert}",
            "data": "{svc_data}",
            "wic": "{wic}",
            "max_train": "12",
            "static_epochs": "1",
            "batch_size": "4",
            "quiet": True,
            "out": "svc",
            "wrong": {"elmo": "{bert}", "bert": "{gpt}"},
        },
    ],  # fmt: skip
}
SLOW_TO_RUN = {
    "quickstart", "pretrain", "finetune", "experiment data-efficiency", "embed compare",
    "experiment static-vs-contextual",  # trains three kinds of static vectors: tests/test_static_vs_contextual.py
}  # fmt: skip
RUNS_UNTIL_STOPPED = {"serve", "humaneval serve"}  # run by tests/test_serve.py and test_humaneval_serve.py


# --- the verbs and their options, from the parser -------------------------------------------------------


def leaf_parsers(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    """(verb words, parser) of every verb and sub-verb that runs something."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield words, parser
        return
    for name, sub in subparsers[0].choices.items():
        yield from leaf_parsers(sub, (*words, name))


def verbs() -> dict[str, argparse.ArgumentParser]:
    commands = discover_commands()
    parser = build_parser(commands)
    return {" ".join(words): sub for words, sub in leaf_parsers(parser)}


VERBS = verbs()
COMMANDS = {c.name: c for c in discover_commands()}


def value_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {
        a.dest: a
        for a in parser._actions
        if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and a.dest != "debug"
    }


def option_name(action: argparse.Action) -> str:
    return max(action.option_strings, key=len) if action.option_strings else action.dest


def argv(verb: str, row: dict) -> list[str]:
    """The command line of `row` (dest → value; True = a flag) for `verb`: positionals, then options."""
    actions = value_actions(VERBS[verb])
    positionals, options = [], []
    for dest, value in row.items():
        if dest == "wrong":
            continue
        action = actions[dest]
        values = value if isinstance(value, list) else [] if value is True else [value]
        if action.option_strings:
            options += [action.option_strings[0], *values]
        else:
            positionals += values
    return [*verb.split(), *positionals, *options]


# --- the cases ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    verb: str
    row: int  # which VALID invocation
    kind: str  # what is wrong, e.g. "not UTF-8"
    dest: str  # the option it is wrong in ("" for a config override)
    value: object  # what replaces the valid value (a {name} of the world, a number), or override arguments
    expect: str  # text the error line must contain ({name}s of the world filled in)

    def __str__(self):
        return f"{self.verb} {self.dest or 'override'} {self.kind}"


FILE_CASES = [("missing", "{missing}"), ("empty", "{empty}"), ("not UTF-8", "{latin1}")]
DIR_CASES = [("missing", "{missing}"), ("not a model", "{notamodel}"), ("a run directory", "{run}")]


def cases() -> list[Case]:
    found = []
    for verb, parser in VERBS.items():
        actions = value_actions(parser)
        for index, row in enumerate(VALID.get(verb, [])):
            for dest, action in actions.items():
                found += cases_of_action(verb, index, row, dest, action)
            command = COMMANDS[verb.split()[0]]
            if command.takes_overrides:
                found += override_cases(verb, index, command.config)
    return found


def cases_of_action(verb: str, index: int, row: dict, dest: str, action: argparse.Action) -> list[Case]:
    name = option_name(action)
    cases = []
    if action.type in (count, count_or_zero, positive_number):
        bad = ["-5"] if action.type is count_or_zero else ["-5", "0"]
        cases += [Case(verb, index, f"count {v}", dest, v, f"{name}: must be ") for v in bad]
    if dest not in row:  # an input this invocation does not use: another row covers it
        return cases
    listed = isinstance(row[dest], list)
    if action.metavar in FILE_METAVARS:
        for kind, value in FILE_CASES:
            cases.append(Case(verb, index, kind, dest, [value] if listed else value, value))
    elif action.metavar == "CONFIG":  # an empty YAML file is every default: valid
        for kind, value in [
            ("missing", "{missing}"),
            ("not UTF-8", "{latin1}"),
            ("unknown key", "{unknown_yaml}"),
        ]:
            expect = "nosuch" if kind == "unknown key" else value
            cases.append(Case(verb, index, kind, dest, value, expect))
    elif action.metavar == "DIR":
        for kind, value in DIR_CASES:
            cases.append(
                Case(verb, index, kind, dest, value, "{run}/model" if kind == "a run directory" else value)
            )
        wrong = row.get("wrong", {}).get(dest)
        if wrong is not None:
            cases.append(Case(verb, index, "wrong kind", dest, wrong, wrong))
    return cases


def override_cases(verb: str, index: int, config: type | None) -> list[Case]:
    """`--section.key=value` overrides; a top-level key is `--set key=value`."""
    cases = [Case(verb, index, "unknown key", "", ["--nosuch.key=1"], "nosuch")]
    cases.append(Case(verb, index, "unknown top-level key", "", ["--set", "nosuch=1"], "nosuch"))
    for key, least in bounded_fields(config) if config is not None else []:
        override = [f"--{key}={least - 1}"] if "." in key else ["--set", f"{key}={least - 1}"]
        cases.append(Case(verb, index, f"count {least - 1} {key}", "", override, f"'{key}' must be"))
    return cases


def bounded_fields(cls):
    """(key, least) of every bounded field of the config tree `cls` (a list's items are left out)."""
    for key, tp in leaf_fields(cls):
        if least_of(tp) is not None and "list" not in str(tp):
            yield key, least_of(tp)


CASES = cases()


# --- the world: tiny models and files, built once ---------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, str]:
    import torch

    from lmforge.humaneval import create_study
    from lmforge.model import build_model, preset
    from lmforge.model.convert import to_hf
    from lmforge.model.rnn import LSTMConfig, LSTMLanguageModel
    from lmforge.pretrain import save_final_model
    from lmforge.search import build_index
    from lmforge.tokenizers import BPETokenizer, WordPieceTokenizer

    root = tmp_path_factory.mktemp("world")
    paths = {"missing": root / "absent.txt", "notamodel": root / "notamodel", "run": root / "run"}
    files = {
        "text": TEXT,
        "empty": "",
        "labels": "pos\nneg\npos\n",
        "vectors": "3 2\ncat 0.1 0.9\ndog 0.2 0.8\nmat 0.9 0.1\n",
        "analogies": ": animals\ncat dog cat dog\n",
        "pairs": "cat\tdog\t8.0\ncat\tmat\t2.0\ndog\tmat\t1.0\n",
        "train_tsv": "sentence\tlabel\n" + "".join(f"{line}\t{i % 2}\n" for i, line in enumerate(TEXT.splitlines() * 4)),
        "unknown_yaml": "nosuch: 1\n",
        "summaries": json.dumps({"document": TEXT, "summary": "animals sat"}) + "\n",
    }  # fmt: skip
    for name, text in files.items():
        suffix = {"train_tsv": ".tsv", "unknown_yaml": ".yaml", "summaries": ".jsonl"}.get(name, ".txt")
        paths[name] = root / f"{name}{suffix}"
        paths[name].write_text(text)
    paths["latin1"] = root / "latin1.txt"
    paths["latin1"].write_bytes("le café est chaud\n".encode("latin-1"))
    paths["notamodel"].mkdir()
    (paths["notamodel"] / "notes.txt").write_text("not a model\n")
    squad = {"data": [{"title": "t", "paragraphs": [{"context": TEXT, "qas": [
        {"id": "q1", "question": "who sat?", "answers": [{"text": "the cat", "answer_start": 0}]}]}]}]}  # fmt: skip
    paths["squad"] = root / "squad.json"
    paths["squad"].write_text(json.dumps(squad))
    paths["study"] = root / "study.db"
    create_study(paths["study"], name="world", outputs={"a": ["x", "y"], "b": ["y", "z"]}, raters=2).close()
    paths["squad_predictions"] = root / "predictions.json"
    paths["squad_predictions"].write_text(json.dumps({"q1": "the cat"}))

    torch.manual_seed(0)
    small = dict(d_model=32, n_layers=1, n_heads=2, d_ff=64, max_positions=64)
    bpe = BPETokenizer.train([TEXT], vocab_size=280)
    wordpiece = WordPieceTokenizer.train([TEXT], vocab_size=90)
    seq2seq_tokenizer = BPETokenizer.train([TEXT], vocab_size=280, special_tokens=["<pad>", "<s>", "</s>"])
    models = {
        "gpt": (preset("gpt-tiny", vocab_size=bpe.vocab_size, **small), bpe),
        "bert": (preset("bert-tiny", vocab_size=wordpiece.vocab_size, **small), wordpiece),
        "classifier": (
            preset("bert-tiny", vocab_size=wordpiece.vocab_size, head="sequence-classification",
                   extra={"labels": ["0", "1"]}, **small),
            wordpiece,
        ),
        "qa": (preset("bert-tiny", vocab_size=wordpiece.vocab_size, head="question-answering",
                   extra={"qa": {"doc_stride": 16, "max_question_length": 16}}, **small), wordpiece),
        "seq2seq": (preset("transformer-tiny", vocab_size=seq2seq_tokenizer.vocab_size, **small), seq2seq_tokenizer),
    }  # fmt: skip
    for name, (config, tokenizer) in models.items():
        paths[name] = build_model(config).save(root / name, tokenizer=tokenizer)
    build_model(models["gpt"][0]).save(paths["run"] / "model", tokenizer=bpe)
    paths["hf"] = to_hf(paths["bert"], root / "hf")
    paths["more"] = root / "more.txt"
    paths["more"].write_text("a bird sang in the tree .\n")
    paths["index"] = build_index([paths["text"]], root / "index", paths["bert"], progress=False)
    paths["queries"] = root / "queries.tsv"
    paths["queries"].write_text("q1\tthe cat sat\n")
    paths["qrels"] = root / "qrels.txt"
    paths["qrels"].write_text(f"q1 0 {paths['text']}:1 1\n")
    lstm = LSTMLanguageModel(LSTMConfig(vocab_size=bpe.vocab_size, embed_dim=8, hidden_size=8, num_layers=1))
    paths["lstm"] = save_final_model(lstm, None, root / "lstm-run", Path(paths["gpt"]) / "tokenizer.json", "")

    from lmforge.model.elmo import ELMoConfig, ELMoModel
    from lmforge.tokenizers import WordTokenizer

    words = WordTokenizer.train(TEXT.splitlines(), vocab_size=60)
    elmo = ELMoConfig(vocab_size=words.vocab_size, max_characters=8, char_embed_dim=4, filters=[[1, 4], [2, 4]],
                      highway_layers=1, projection_dim=8, hidden_size=8, num_layers=1, cutoffs=[])  # fmt: skip
    paths["elmo"] = ELMoModel(elmo).save(root / "elmo", tokenizer=words)
    paths["svc_data"] = root / "svc-data"  # what `experiment static-vs-contextual --data` reads
    (paths["svc_data"] / "wikitext-2").mkdir(parents=True)
    (paths["svc_data"] / "wikitext-2" / "train.txt").write_text(TEXT * 3)
    (paths["svc_data"] / "sst2").mkdir()
    for split in ("train", "dev"):
        (paths["svc_data"] / "sst2" / f"{split}.tsv").write_text(files["train_tsv"])
    paths["wic"] = root / "wic.jsonl"  # 2 train pairs of "cat", 2 test pairs of "dog"
    with paths["wic"].open("w") as wic:
        for split, word in (("train", "cat"), ("test", "dog")):
            for label, sense in ((1, "A"), (0, "B")):
                pair = {"word": word, "split": split, "label": label, "source1": "t", "source2": "t",
                        "sentence1": f"the {word} sat", "start1": 4, "end1": 7, "sense1": "A",
                        "sentence2": f"a {word} ran", "start2": 2, "end2": 5, "sense2": sense}  # fmt: skip
                wic.write(json.dumps(pair) + "\n")

    paths["pretrain_yaml"] = root / "pretrain.yaml"
    paths["pretrain_yaml"].write_text(
        f"out: pretrain\nblock_size: 16\ndata: {{files: [{paths['text']}]}}\n"
        "tokenizer: {kind: char, vocab_size: 64}\n"
        "model: {preset: gpt-tiny, changes: {d_model: 32, n_layers: 1, n_heads: 2, d_ff: 64}}\n"
        "train: {max_steps: 2, batch_size: 2, eval_every: 0, eval_batches: 1, progress: false, tensorboard: false}\n"
    )
    paths["finetune_yaml"] = root / "finetune.yaml"
    paths["finetune_yaml"].write_text(
        f"model: {paths['bert']}\nout: finetune\nmax_length: 16\n"
        f"data: {{train: {paths['train_tsv']}, dev: {paths['train_tsv']}}}\n"
        "train: {max_steps: 2, batch_size: 4, eval_every: 0, progress: false, tensorboard: false}\n"
    )
    return {name: str(path) for name, path in paths.items()}


def fill(value, world: dict[str, str]):
    if isinstance(value, list):
        return [fill(v, world) for v in value]
    return value.format(**world) if isinstance(value, str) else value


# --- the tests ---------------------------------------------------------------------------------------------


def test_every_verb_has_a_valid_invocation():
    assert len(VERBS) >= 25 and "tokenizer train" in VERBS and "eval bleu" in VERBS
    missing = sorted(set(VERBS) - set(VALID))
    assert missing == [], f"add a working invocation of {missing} to VALID, so its bad inputs are tested"
    assert sorted(set(VALID) - set(VERBS)) == []


def test_every_input_of_every_verb_is_in_a_valid_invocation():
    """An input no invocation uses gets no bad inputs: each file, preset and model option must appear."""
    unused = [
        f"{verb} {option_name(action)}"
        for verb, parser in VERBS.items()
        for dest, action in value_actions(parser).items()
        if action.metavar in (*FILE_METAVARS, "CONFIG", "DIR") and not any(dest in row for row in VALID[verb])
    ]
    assert unused == []


def test_numbers_state_their_range():
    """A plain ``type=int`` takes -5; every number option is a count, a count or zero, a positive number,
    or (listed here) signed on purpose."""
    plain = [
        (verb, option_name(action))
        for verb, parser in VERBS.items()
        for action in value_actions(parser).values()
        if action.type in (int, float) and (verb, option_name(action)) not in SIGNED
    ]
    allowed_floats = {"--temperature", "--top-p", "--min-p", "--repetition-penalty", "--smooth-value",
                      "--sample", "--alpha", "--min-alpha", "--val-fraction", "--held-out", "--target",
                      "--threshold"}  # fmt: skip
    assert [(verb, name) for verb, name in plain if name not in allowed_floats] == []


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input_is_one_line_naming_it(case, world, cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    row = {k: fill(v, world) for k, v in VALID[case.verb][case.row].items()}
    if case.dest:
        row[case.dest] = fill(case.value, world)
        extra = []
    else:
        extra = case.value
    code, out, err = cli(*argv(case.verb, row), *extra)
    lines = err.strip().splitlines()
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith(f"lmforge {case.verb.split()[0]}"), err
    assert "Traceback" not in err
    assert fill(case.expect, world) in lines[0], (case.expect, lines[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "partial output left behind"


@pytest.mark.parametrize(
    ("verb", "row"),
    [
        (verb, i)
        for verb, rows in VALID.items()
        for i in range(len(rows))
        if verb not in SLOW_TO_RUN | RUNS_UNTIL_STOPPED
    ],
)
def test_the_valid_invocations_work(verb, row, world, cli, tmp_path, monkeypatch):
    """The bad inputs are swapped into invocations that work, so each error is the bad input's."""
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(*argv(verb, {k: fill(v, world) for k, v in VALID[verb][row].items()}))
    assert code == 0, err
