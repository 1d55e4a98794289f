"""What the benchmark scripts share: writing their own section of RESULTS.md.

Import it as ``from common import write_section`` (the scripts that drop this folder from `sys.path`, so
that `benchmarks/tokenizers.py` does not shadow HF's `tokenizers`, append it back at the end first).
"""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(heading: str, text: str, *, before: str | None = None) -> None:
    """Put `text` (which starts with the line `heading`) in RESULTS.md: in place of the section with that
    heading, up to the next "## " heading; a new section goes before the heading `before` when there is one,
    else at the end."""
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if heading in current:
        head, _, rest = current.partition(heading)
        tail = rest[rest.find("\n## ") :] if "\n## " in rest else ""
        current = head.rstrip() + "\n\n" + text + tail
    elif before and "\n" + before in current:
        at = current.find("\n" + before)
        current = current[:at] + "\n" + text + current[at:]
    else:
        current = current.rstrip() + "\n\n" + text
    RESULTS.write_text(current)


def conditions(load_before: tuple[float, float, float], started: float) -> str:
    """One line for the top of a section: when, on what, under which load, for how long — e.g.
    "Run 2026-12-05 14:02 UTC on an Intel Xeon (2 cores), torch 2.13.0+cpu; load average 3.1 before, 4.0
    after (1 min); 41.5 min." `load_before` is `os.getloadavg()` and `started` `time.time()` at the start."""
    import os
    import platform
    import time

    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
        ]
        cpu = names[0] if names else cpu
    return (
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} on {cpu} ({os.cpu_count()} cores), "
        f"torch {torch.__version__}; load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after "
        f"(1 min); {(time.time() - started) / 60:.1f} min."
    )
