"""Fault injection for tests of rollback (like the CNI plugins' debugPostIPAMError).

Setting CNET_FAULT=NAME makes the step named NAME fail as a kernel error
would, so a test can show that everything applied before it is undone.
"""

import os

from .errors import OperationFailed


def checkpoint(name: str) -> None:
    if os.environ.get("CNET_FAULT") == name:
        raise OperationFailed(f"injected fault at {name} (CNET_FAULT)")
