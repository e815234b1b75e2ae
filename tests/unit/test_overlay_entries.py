"""The record of what an overlay's last sync installed (drivers/overlay_entries.py)."""

from __future__ import annotations

from cnet.drivers import overlay_entries as installed

ENTRIES = ({("02:00:00:00:00:01", "10.0.0.2")}, {("10.60.0.5", "02:00:00:00:00:01")})


def test_what_was_written_reads_back_for_the_same_device(tmp_path):
    state = str(tmp_path / "state.yaml")
    installed.write(state, "ov0", 7, ENTRIES)
    assert installed.read(state, "ov0", 7) == ENTRIES


def test_another_device_or_no_file_or_a_damaged_one_is_unknown(tmp_path):
    state = str(tmp_path / "state.yaml")
    assert installed.read(state, "ov0", 7) is None
    installed.write(state, "ov0", 7, ENTRIES)
    assert installed.read(state, "ov0", 8) is None  # the device was made again: another ifindex
    with open(installed.path(state, "ov0"), "w") as f:
        f.write('{"device": ')
    assert installed.read(state, "ov0", 7) is None


def test_forget_removes_the_record_and_tolerates_none(tmp_path):
    state = str(tmp_path / "state.yaml")
    installed.write(state, "ov0", 7, ENTRIES)
    installed.forget(state, "ov0")
    installed.forget(state, "ov0")
    assert installed.read(state, "ov0", 7) is None
