"""Write cnet's man pages, generated from the click commands by click-man:
docs/man/cnet.1 and one page per subcommand (cnet-create-bridge.1, ...).

    .venv/bin/python tools/manpage.py [DIR]      # default docs/man

`make man` runs it; tests/unit/test_manpage.py checks that docs/man is what
the commands generate now (a help text changed without `make man` fails).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write(target: str) -> list[str]:
    """The man pages, written into target; their file names, sorted."""
    sys.path.insert(0, str(ROOT / "src"))
    from click_man.core import write_man_pages

    from cnet import __version__
    from cnet.cli import cli

    os.makedirs(target, exist_ok=True)
    for old in Path(target).glob("cnet*.1"):
        old.unlink()
    write_man_pages("cnet", cli, version=__version__, target_dir=target)
    return sorted(p.name for p in Path(target).glob("cnet*.1"))


if __name__ == "__main__":
    made = write(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "docs" / "man"))
    print(f"{len(made)} man pages: {', '.join(made)}")
