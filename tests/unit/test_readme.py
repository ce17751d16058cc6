"""The README's first example points at a runnable version, and every file it names exists."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
FILES = re.compile(r"`((?:examples|notebooks|docs|bench)/[\w./-]+\.\w+)`")


def test_the_first_example_names_its_runnable_version_next_to_it():
    before_snippet = README.split("## In a notebook", 1)[1].split("```python", 1)[0]
    named = FILES.findall(before_snippet)
    assert "examples/quickstart.py" in named, before_snippet


def test_every_file_the_readme_names_exists():
    named = set(FILES.findall(README))
    assert named and not [p for p in sorted(named) if not (ROOT / p).is_file()]
