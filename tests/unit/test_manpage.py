"""docs/man is what the click commands generate now (tools/manpage.py, `make man`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def without_date(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith(".TH ")]  # .TH carries the day it was made


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # click-man uses click helpers click 9 drops
@pytest.mark.skipif(importlib.util.find_spec("click_man") is None, reason="click-man is not installed (pip install -e '.[test]')")
def test_the_shipped_man_pages_are_the_generated_ones(tmp_path):
    spec = importlib.util.spec_from_file_location("manpage", ROOT / "tools" / "manpage.py")
    manpage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(manpage)
    made = manpage.write(str(tmp_path))
    shipped = sorted(p.name for p in (ROOT / "docs" / "man").glob("cnet*.1"))
    assert made == shipped, "run `make man`: the commands and docs/man differ"
    assert "cnet.1" in made and "cnet-create-bridge.1" in made
    for name in made:
        assert without_date((tmp_path / name).read_text()) == without_date((ROOT / "docs" / "man" / name).read_text()), \
            f"docs/man/{name} is out of date: run `make man`"
