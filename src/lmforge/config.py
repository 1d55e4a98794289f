"""Typed configs: dataclasses, loaded from YAML, with `--section.key=value` overrides.

A config is a tree of dataclasses. Each field's type is checked when it is loaded; an unknown key or a
value of the wrong type is a `ConfigError` that names the key (``train.lr``), where it came from (the YAML
file or the command line) and what would be valid. A field that counts something says so in its type —
`Count` (1 or more) or `CountOrZero` (0 means what the field's comment says) — so ``-5`` is refused as that
key's error, not found later as an empty dataset. No config framework: about 250 lines, owned here.

    @dataclass
    class Train:
        lr: float = 3e-4          # AdamW peak learning rate
        steps: Count = 1000

    @dataclass
    class Run:
        train: Train = field(default_factory=Train)

    run = load_config(Run, "configs/x.yaml", ["--train.lr=1e-3"])
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml

from lmforge.errors import ConfigError, MissingFileError

T = TypeVar("T")

_MISSING = object()


@dataclass(frozen=True)
class AtLeast:
    """The smallest value a field takes, written into its type: ``Annotated[int, AtLeast(1)]``."""

    least: int | float


Count = Annotated[int, AtLeast(1)]  # how many of something: steps, examples, tokens, beams
CountOrZero = Annotated[int, AtLeast(0)]  # a count where 0 has a meaning (off, all, none held out) or a seed


class _BelowLeast(ConfigError):
    """A value of the right type below its field's `AtLeast`: reported as is, not as a type mismatch."""


def load_config(cls: type[T], path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> T:
    """Build `cls` from its defaults, then the YAML file at `path` (if any), then the overrides.

    Overrides are strings ``--section.key=value`` (or ``section.key=value``); values are parsed as YAML
    scalars (``true``, ``3e-4``, ``[1, 2]``), except for string fields, which take the text as written.
    """
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"config file not found: {path}")
        from lmforge.text import read_text  # a byte that is not UTF-8: one line with its offset

        try:
            loaded = yaml.safe_load(read_text(path))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{path}: the top level must be a mapping of sections, got {type(loaded).__name__}"
            )
        data = loaded
        source = str(path)
    config = from_dict(cls, data, source=source)
    return apply_overrides(config, overrides)


def from_dict(cls: type[T], data: Mapping[str, Any], *, source: str = "config", prefix: str = "") -> T:
    """Build dataclass `cls` from a (nested) mapping, checking every key and type."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if not isinstance(data, Mapping):
        where = prefix.rstrip(".") or "the top level"
        raise ConfigError(f"{source}: {where} must be a mapping, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in fields:
            raise ConfigError(
                f"{source}: unknown key '{prefix}{key}'; valid keys{_in(prefix)}: {', '.join(fields)}"
            )
        kwargs[name] = _coerce(value, hints[name], f"{prefix}{name}", source)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # __post_init__ checks, missing required fields
        raise ConfigError(f"{source}: {prefix.rstrip('.') or cls.__name__}: {exc}") from None


def apply_overrides(config: T, overrides: Sequence[str]) -> T:
    """Return a copy of `config` with each ``--section.key=value`` applied in order."""
    for item in overrides:
        key, raw = _split_override(item)
        config = _set_path(config, key.split("."), raw, key)
    return config


def overridden_keys(overrides: Sequence[str]) -> set[str]:
    """The dotted keys a list of overrides sets, e.g. to let an explicit value win over a derived one.

    >>> sorted(overridden_keys(["--train.max_steps=5", "fit-steps-to-minutes=false"]))
    ['fit_steps_to_minutes', 'train.max_steps']
    """
    return {_split_override(item)[0] for item in overrides}


def add_set_option(parser, example: str) -> None:
    """The repeatable ``--set KEY=VALUE`` option of a command whose config has top-level keys; its values
    go through `top_level_overrides`. `example`: what the help shows, e.g. ``"--set max_length=64"``."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a top-level setting, e.g. {example}",
    )


def top_level_overrides(items: Sequence[str]) -> list[str]:
    """The values of repeated ``--set KEY=VALUE`` options, as overrides of top-level keys.

    >>> top_level_overrides(["max_length=64"])
    ['max_length=64']
    """
    for item in items:
        if "=" not in item or "." in item.split("=", 1)[0]:
            raise ConfigError(
                f"--set {item}: write --set KEY=VALUE for a top-level key (sections: --train.lr=...)"
            )
    return list(items)


def split_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Separate dotted overrides (``--a.b=1`` or ``--a.b 1``) from the other command-line arguments.

    >>> split_overrides(["--config", "x.yaml", "--train.lr=1e-3", "--model.n-layer", "4"])
    (['train.lr=1e-3', 'model.n_layer=4'], ['--config', 'x.yaml'])
    """
    overrides: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name = arg[2:].split("=", 1)[0] if arg.startswith("--") else ""
        if "." in name and not name.startswith("."):
            if "=" in arg:
                key, value = arg[2:].split("=", 1)
            elif i + 1 < len(argv):
                key, value = name, argv[i + 1]
                i += 1
            else:
                raise ConfigError(f"override {arg} has no value; write {arg}=VALUE")
            overrides.append(f"{key.replace('-', '_')}={value}")
        else:
            rest.append(arg)
        i += 1
    return overrides, rest


def leaf_fields(cls: type, prefix: str = "") -> typing.Iterator[tuple[str, Any]]:
    """(dotted key, annotation) of every field of the dataclass tree `cls` that is not a section.

    >>> from lmforge.train.config import TrainConfig
    >>> [key for key, _ in leaf_fields(TrainConfig)][:2]
    ['max_steps', 'max_minutes']
    """
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            yield from leaf_fields(hints[f.name], f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", hints[f.name]


def least_of(tp: Any) -> int | float | None:
    """The `AtLeast` bound of an annotation (``Count``, ``Count | None``), or None.

    >>> least_of(Count), least_of(CountOrZero | None), least_of(int)
    (1, 0, None)
    """
    for part in (tp, *typing.get_args(tp)):
        if typing.get_origin(part) is Annotated:
            return next((a.least for a in typing.get_args(part)[1:] if isinstance(a, AtLeast)), None)
    return None


def to_dict(config: Any) -> dict[str, Any]:
    """The config as plain YAML-able data (paths as strings, tuples as lists)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(config)


def dump_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


# --- internals ---------------------------------------------------------------------------------------


def _in(prefix: str) -> str:
    return f" in '{prefix.rstrip('.')}'" if prefix else ""


def _split_override(item: str) -> tuple[str, str]:
    text = item[2:] if item.startswith("--") else item
    if "=" not in text:
        raise ConfigError(f"override '{item}' must look like --section.key=value")
    key, raw = text.split("=", 1)
    return key.replace("-", "_"), raw


def _set_path(config: Any, parts: list[str], raw: str, key: str) -> Any:
    name = parts[0]
    prefix = key[: len(key) - len(".".join(parts))]
    fields = {f.name: f for f in dataclasses.fields(config) if f.init}
    if name not in fields:
        raise ConfigError(
            f"command line: unknown key '{prefix}{name}'; valid keys{_in(prefix)}: {', '.join(fields)}"
        )
    current = getattr(config, name)
    if len(parts) > 1:
        if not dataclasses.is_dataclass(current):
            raise ConfigError(
                f"command line: '{prefix}{name}' is a value, not a section; use --{prefix}{name}=..."
            )
        new_value = _set_path(current, parts[1:], raw, key)
    else:
        target = typing.get_type_hints(type(config), include_extras=True)[name]
        new_value = _coerce(_parse_scalar(raw, target), target, key, "command line")
    try:
        return dataclasses.replace(config, **{name: new_value})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"command line: {key}: {exc}") from None


def _parse_scalar(raw: str, target: Any) -> Any:
    """Command-line text -> a value: strings stay as written, everything else is read as YAML."""
    if target is str or target is Path:
        return raw
    try:
        return yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        return raw


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Annotated:
        return _type_name(typing.get_args(tp)[0])
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check `value` against annotation `tp`; return it converted (int -> float, list -> tuple, ...)."""

    def fail(expected: str | None = None) -> typing.NoReturn:
        raise ConfigError(
            f"{source}: '{key}' must be {expected or _type_name(tp)}, got {type(value).__name__} {value!r}"
        )

    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Annotated:
        value = _coerce(value, args[0], key, source)
        for bound in (a for a in args[1:] if isinstance(a, AtLeast)):
            if value < bound.least:
                raise _BelowLeast(f"{source}: '{key}' must be at least {bound.least}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            fail()
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, key, source)
            except _BelowLeast:
                raise
            except ConfigError:
                continue
        fail(" or ".join(_type_name(a) for a in args))
    if origin is typing.Literal:
        if value in args:
            return value
        fail("one of " + ", ".join(repr(a) for a in args))
    if dataclasses.is_dataclass(tp):
        if isinstance(value, Mapping):
            return from_dict(tp, value, source=source, prefix=f"{key}.")
        fail("a mapping (a section)")
    if origin in (list, Sequence) or tp is list:
        if not isinstance(value, (list, tuple)):
            fail()
        item = args[0] if args else Any
        return [_coerce(v, item, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin is tuple or tp is tuple:
        if not isinstance(value, (list, tuple)):
            fail()
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value))
        if args and len(args) != len(value):
            fail(f"a list of {len(args)} items")
        return tuple(
            _coerce(v, a, f"{key}[{i}]", source)
            for i, (v, a) in enumerate(zip(value, args or [Any] * len(value), strict=True))
        )
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            fail()
        kt, vt = args if args else (Any, Any)
        return {_coerce(k, kt, key, source): _coerce(v, vt, f"{key}.{k}", source) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        fail("true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        fail("an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads `1e-3` (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        fail("a number")
    if tp is str:
        if isinstance(value, str):
            return value
        fail("a string")
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        fail("a path")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    fail()
