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
