"""Writing files so that an interruption never leaves half a file: the one home of atomic writes, and of
where lmforge keeps what it computes once per machine (`cache_directory`).

Every writer fills a temporary file beside the target (same directory, so same file system), fsyncs it and
renames it over the target; a rename is atomic, so a reader sees the old file or the new one, never a
mix, and a crash leaves at most a hidden `.NAME.*.tmp` file behind.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_json(folder / "meta.json", {"tokens": 3}, indent=None).read_text()
    '{"tokens": 3}'
    >>> write_text(folder / "notes.txt", "one\\n").read_text()
    'one\\n'
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmforge.errors import LmforgeError


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> Path:
    """Call `write(temporary_path)` to fill a temporary file beside `path`, fsync it, rename it over `path`.

    `write` gets a path (a string) so that libraries that take file names (safetensors, matplotlib,
    shutil) can write it; the temporary is removed if `write` fails. The file gets the permissions an
    ordinary `open(path, "w")` would give it — the old file's when it replaces one, else 0o666 less the
    umask — not the owner-only 0o600 of the temporary.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise LmforgeError(f"{path}: directory {directory} does not exist; create it first")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    os.close(handle)
    try:
        write(temporary)
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.chmod(temporary, _mode_for(path))
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path


_umask_lock = threading.Lock()


def _mode_for(path: Path) -> int:
    """The permission bits `path` should end with: those of the file it replaces, else 0o666 & ~umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        with _umask_lock:  # the umask can only be read by setting it: set it back at once
            umask = os.umask(0o022)
            os.umask(umask)
        return 0o666 & ~umask


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """`data` written atomically to `path`."""
    return atomic_write(path, lambda temporary: Path(temporary).write_bytes(data))


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """`text` written atomically to `path` (UTF-8 unless told otherwise; newlines as given)."""
    return write_bytes(path, text.encode(encoding))


def write_json(path: str | os.PathLike, data: Any, *, indent: int | None = 2, newline: bool = False) -> Path:
    """`json.dumps(data, indent=indent)` written atomically to `path`, with a final newline if asked."""
    return write_text(path, json.dumps(data, indent=indent) + ("\n" if newline else ""))


def save_figure(figure, path: str | os.PathLike, **options) -> Path:
    """A matplotlib figure saved atomically (format from the suffix of `path`, `options` as `savefig`
    takes them), then closed so that a long run does not collect open figures."""
    import matplotlib.pyplot as plt

    path = Path(path)
    file_format = path.suffix.lstrip(".").lower() or "png"
    try:
        return atomic_write(path, lambda temporary: figure.savefig(temporary, format=file_format, **options))
    finally:
        plt.close(figure)


def cache_directory() -> Path:
    """lmforge's per-machine cache (converted checkpoints, the bf16 probe of `precision: auto`):
    $LMFORGE_CACHE, else $XDG_CACHE_HOME/lmforge, else ~/.cache/lmforge. Nothing is created here."""
    if os.environ.get("LMFORGE_CACHE"):
        return Path(os.environ["LMFORGE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lmforge"
