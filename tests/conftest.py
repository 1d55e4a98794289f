"""Shared fixtures.

`shared_data` is `../shared/data` beside the checkout (or $LMFORGE_SHARED_DATA). When it is absent the
tests that need it skip with the reason — except under CI=true, where they fail: a wrong path must not
silently skip every parity test. `browser` and `page` (tests/browser.py) do the same for Chromium.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from browser import chromium, fresh_page, unavailable

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LMFORGE_SHARED_DATA", REPO.parent / "shared" / "data"))


def require_shared_data() -> Path:
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    unavailable(f"shared datasets not found at {SHARED_DATA} (expected ../shared/data beside the checkout)")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_shared_data()


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session (tests/browser.py)."""
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser):
    """A tab in a fresh browser context; the test fails if the page throws a JavaScript error."""
    with fresh_page(browser) as page:
        yield page


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of tiny-model tests: on a busy 2-core machine two OpenMP threads
    spin-wait on each other around tiny matmuls (up to 100x slower). Use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cli(capsys):
    """Run `lmforge ARGS...` in-process; returns (exit code, stdout, stderr). A usage error that argparse
    exits on (a bad option value) returns its exit code too, as the console script would."""
    from lmforge.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def cli_process():
    """Run the installed `lmforge` console script in a subprocess; returns CompletedProcess."""

    def run(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        exe = Path(sys.executable).with_name("lmforge")
        command = [str(exe)] if exe.exists() else [sys.executable, "-m", "lmforge"]
        return subprocess.run(
            command + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=timeout
        )

    return run
