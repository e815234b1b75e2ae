"""`cnet -v`: one line on stderr per change cnet makes to the kernel or the
firewall, as it happens ("+ link cn1a2b3c4d5e (veth, peer eth0 in web)",
"- netns web"). Kernel access and the firewall backends call made() and
removed(); nothing is printed unless the CLI turned it on. A leaf module:
it imports nothing of cnet's, so every layer may use it.
"""

from __future__ import annotations

import sys

_on = [False]


def enable() -> None:
    _on[0] = True


def made(what: str) -> None:
    if _on[0]:
        _say("+", what)


def removed(what: str) -> None:
    if _on[0]:
        _say("-", what)


def changed(what: str) -> None:
    if _on[0]:
        _say("~", what)


def _say(sign: str, what: str) -> None:
    # one line whatever a name holds (errors.one_line's rule, without importing it)
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in what)
    sys.stderr.write(f"{sign} {text}\n")
    sys.stderr.flush()
