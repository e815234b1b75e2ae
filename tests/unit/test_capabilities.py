"""`cnet check` where it cannot look (not root, capabilities dropped, reads
refused by a policy): one `cnet: error:` line and exit 1, never "in sync" (0)
nor differences made of refusals (5)."""

import subprocess
from types import SimpleNamespace

import pytest

from cnet.errors import OperationFailed
from cnet.firewall import iptables, nftables
from cnet.firewall.plan import FirewallPlan
from cnet.kernel import privilege
from test_cli_errors import isolated, one_error_line, prepared, prepared_state, run, state_file  # noqa: F401

ROOT_CAPS = "000001ffffffffff"
NO_CAPS = "0000000000000000"
NET_ADMIN_ONLY = f"{1 << 12:016x}"


def status_with(tmp_path, monkeypatch, cap_eff: str) -> None:
    status = tmp_path / "status"
    status.write_text(f"Name:\tcnet\nCapInh:\t0000000000000000\nCapEff:\t{cap_eff}\nCapBnd:\t{ROOT_CAPS}\n")
    monkeypatch.setattr(privilege, "STATUS", str(status))


@pytest.mark.parametrize("cap_eff, lacking", [
    (ROOT_CAPS, []), (NO_CAPS, ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]), (NET_ADMIN_ONLY, ["CAP_SYS_ADMIN"])])
def test_lacking_reads_the_effective_set(tmp_path, monkeypatch, cap_eff, lacking):
    status_with(tmp_path, monkeypatch, cap_eff)
    assert privilege.lacking("CAP_NET_ADMIN", "CAP_SYS_ADMIN") == lacking


@pytest.mark.parametrize("argv, words", [
    (["check"], "cannot read the firewall without CAP_NET_ADMIN"),
    (["check", "--json"], "cannot read the firewall without CAP_NET_ADMIN"),
    (["check", "--deep"], "cannot read the firewall or enter the sandboxes (--deep) without CAP_NET_ADMIN and"
                          " CAP_SYS_ADMIN"),
])
def test_check_without_capabilities_fails_on_one_line_before_the_kernel(capsys, prepared, tmp_path, monkeypatch,
                                                                        argv, words):
    status_with(tmp_path, monkeypatch, NO_CAPS)
    code, out, err = run(capsys, "--state", str(prepared), *argv)
    assert code == 1 and out == ""
    assert words in one_error_line(err)


def test_check_deep_with_net_admin_only_names_what_it_lacks(capsys, prepared, tmp_path, monkeypatch):
    status_with(tmp_path, monkeypatch, NET_ADMIN_ONLY)
    code, out, err = run(capsys, "--state", str(prepared), "check", "--deep")
    assert code == 1 and "cannot enter the sandboxes (--deep) without CAP_SYS_ADMIN" in one_error_line(err)


def test_an_empty_state_cannot_be_called_in_sync_either(capsys, state_file, tmp_path, monkeypatch):
    status_with(tmp_path, monkeypatch, NO_CAPS)
    code, out, err = run(capsys, "--state", str(state_file), "check")
    assert code == 1 and "nothing was compared" in one_error_line(err)


PLAN = FirewallPlan()
OWNER = SimpleNamespace(nft_table="cnet", iptables_chain=lambda name: "CNET-" + name)


def test_nft_refusing_to_list_is_an_error_not_a_missing_table(monkeypatch):
    monkeypatch.setattr(nftables, "_run", lambda script, json_output=False: (
        "netlink: Error: cache initialization failed: Operation not permitted\n", ""))
    with pytest.raises(OperationFailed, match="cannot read firewall table inet cnet: netlink: Error: cache"):
        nftables.NftablesBackend(OWNER).differences(PLAN)


def test_a_missing_nft_table_is_no_refusal(monkeypatch):
    monkeypatch.setattr(nftables, "_run", lambda script, json_output=False: (
        "Error: No such file or directory\nlist table inet cnet\n", ""))
    assert nftables.NftablesBackend(OWNER).differences(PLAN) == []  # an empty plan: none wanted


def test_iptables_save_refused_is_an_error_not_missing_chains(monkeypatch):
    monkeypatch.setattr(iptables.shutil, "which", lambda name: "/usr/sbin/" + name)
    monkeypatch.setattr(iptables, "_run", lambda cmd, stdin=None: subprocess.CompletedProcess(
        cmd, 1, "", "iptables-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied"
                    " (you must be root)\n"))
    with pytest.raises(OperationFailed, match=r"iptables rules \(table \w+\): .*Permission denied"):
        iptables.IptablesBackend(OWNER).differences(PLAN)
