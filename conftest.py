"""What every test and docstring example runs with (tests/conftest.py holds the tests' fixtures).

lmforge's per-machine cache (`lmforge.io.cache_directory`: converted checkpoints, the bf16 probe of
`precision: auto`) goes to a temporary folder for the whole session, so that tests neither read what an
earlier run measured nor write into the user's ~/.cache/lmforge. Commands the tests start as subprocesses
inherit it through the environment.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setenv("LMFORGE_CACHE", str(tmp_path_factory.mktemp("lmforge-cache")))
    yield
    patch.undo()
