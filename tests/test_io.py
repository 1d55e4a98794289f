"""lmforge.io: an interrupted write leaves the previous file whole and no temporary behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmforge.errors import LmforgeError
from lmforge.io import atomic_write, cache_directory, save_figure, write_bytes, write_json, write_text


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    target = write_text(tmp_path / "notes.txt", "old\n")

    def half_then_crash(temporary: str) -> None:
        with open(temporary, "w") as handle:
            handle.write("new but unfinish")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_then_crash)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_writers_round_trip(tmp_path):
    assert write_bytes(tmp_path / "b.bin", b"\x00\xff").read_bytes() == b"\x00\xff"
    assert write_text(tmp_path / "t.txt", "é\r\n").read_bytes() == "é\r\n".encode()
    data = {"step": 3, "loss": [1.5, None]}
    assert json.loads(write_json(tmp_path / "d.json", data).read_text()) == data
    assert write_json(tmp_path / "n.json", data, indent=None, newline=True).read_text().endswith("]}\n")


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(LmforgeError, match="does not exist"):
        write_text(tmp_path / "absent" / "x.txt", "text")


def test_save_figure_writes_the_format_of_the_suffix(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.plot([0, 1], [1, 0])
    png = save_figure(figure, tmp_path / "curve.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(figure.number)  # closed
    figure, _ = plt.subplots()
    assert save_figure(figure, tmp_path / "curve.svg").read_text().lstrip().startswith("<?xml")


def test_the_cache_directory_follows_the_environment(monkeypatch, tmp_path):
    # the test session's own cache (conftest.py) is never the user's
    assert cache_directory() != Path.home() / ".cache" / "lmforge"
    monkeypatch.setenv("LMFORGE_CACHE", str(tmp_path / "mine"))
    assert cache_directory() == tmp_path / "mine"
    monkeypatch.delenv("LMFORGE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_directory() == tmp_path / "xdg" / "lmforge"


def test_written_files_get_the_permissions_open_would_give(tmp_path):
    """A new file: 0o666 less the umask, as `open(path, "w")` makes it (not the temporary's owner-only
    0o600, which hid every written model from the rest of a group); a replaced file keeps its mode."""
    import os
    import stat

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    fresh = write_text(tmp_path / "fresh.txt", "x")
    assert stat.S_IMODE(fresh.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    os.chmod(fresh, 0o640)
    write_text(fresh, "y")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640
