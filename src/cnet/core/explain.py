"""`cnet explain`: the path a packet to one published port takes, and every
rule that decides it, in the order the packet meets them:

1. the DNAT: the element of cnet's map and the rule of chain `published`
   that uses it (nftables), or the rule of cnet's DNAT chain (iptables);
2. the forward path: every base chain on the forward hook, cnet's and the
   others', followed rule by rule (firewall/explain_read.py), and
   iptables' FORWARD chain with the jumps it makes;
3. the connections conntrack holds for that host port now;
4. the masquerade rules for hairpin and localhost, and the forwarding sysctl.

Nothing is changed; an explanation of a blocked port is still a success.
Cnet.explain (api.py) imports this module when it runs: the readers and
their dataclasses cost every other command nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .. import portspec
from ..errors import InvalidInput, NotFound
from ..firewall import explain_read as fw
from ..firewall import hostread, nftables
from ..firewall.plan import dnat_entries
from ..model import PortMapping, State
from .base import firewall_needs

FORWARDING = {4: "net.ipv4.ip_forward", 6: "net.ipv6.conf.all.forwarding"}
TOOL = {4: "iptables", 6: "ip6tables"}
SHOWN = 3  # connections listed before "..."
RESTORE = "`cnet restore` puts it back"


@dataclass
class Step:
    """One thing that decides the packet's fate. stage: 1 DNAT, 2 forward,
    3 conntrack, 4 hairpin, localhost and sysctl. table/chain/handle for
    nftables, table/chain/rule (a number) for iptables; neither handle nor
    rule: the chain's policy or end."""

    stage: int
    step: str  # "dnat", "forward", "conntrack", "hairpin", "localhost", "sysctl"
    verdict: str  # "dnat to 172.26.0.2:80", "accept", "drop", "missing", "may drop", "on", ...
    blocks: bool = False  # a certain drop or reject, a missing DNAT, forwarding off
    table: str | None = None  # "inet cnet", "inet filter"; iptables: "nat", "filter" (tool gives which)
    chain: str | None = None
    handle: int | None = None
    rule: int | None = None
    tool: str | None = None  # "nft", "iptables", "ip6tables"; None for conntrack and sysctls
    sysctl: str | None = None  # the sysctl step's key
    cnet: bool = False  # cnet's own rule
    detail: str = ""
    maybe: list[str] = field(default_factory=list)  # drops that could not be decided, as "WHERE (VERDICT)"
    cnet_rules: list[str] = field(default_factory=list)  # cnet's rules in a chain it does not own
    connections: list[dict] = field(default_factory=list)
    count: int | None = None  # conntrack: how many connections

    @property
    def where(self) -> str:
        if self.tool is None:
            return self.sysctl or ""
        base = f"{self.table} {self.chain}" if self.tool == "nft" else f"{self.tool} {self.table} {self.chain}"
        if self.handle is not None:
            return f"{base} handle {self.handle}"
        if self.rule is not None:
            return f"{base} rule {self.rule}"
        return f"{base} policy" if self.step == "forward" and self.verdict != "missing" else base

    def to_dict(self) -> dict:
        d = asdict(self)
        d["where"] = self.where
        return d


@dataclass
class Explanation:
    """The path of one host port of one mapping."""

    mapping: PortMapping
    host_port: int
    port: int
    family: int
    bridge: str
    steps: list[Step]

    @property
    def verdict(self) -> str:
        blocked = next((s for s in self.steps if s.blocks), None)
        if blocked is not None:
            if blocked.step == "sysctl":
                return f"blocked: {blocked.sysctl} is off ({blocked.detail})"
            if blocked.step == "dnat" and blocked.verdict == "missing":
                return f"blocked: the DNAT is missing: {blocked.detail}"
            return f"blocked at {blocked.where} ({blocked.verdict})"
        maybe = [f"{s.where} ({s.verdict[4:]})" for s in self.steps if s.verdict.startswith("may ")]
        maybe += [m for s in self.steps for m in s.maybe]
        if maybe:
            return f"should answer, unless the rule at {maybe[0]} drops it (it matches on what cnet cannot know)"
        return "should answer"

    def to_dict(self) -> dict:
        return {"mapping": portspec.format_mapping(self.mapping.host_ip, self.host_port, self.port,
                                                   self.mapping.protocol),
                "sandbox": self.mapping.sandbox, "network": self.mapping.network, "bridge": self.bridge,
                "family": self.family, "steps": [s.to_dict() for s in self.steps], "verdict": self.verdict}


def parse_port(text: str) -> tuple[int, str]:
    """(port, protocol) of PORT[/PROTO], with publish's wording for a bad one."""
    spec = portspec.parse(text)
    if spec.host_ip is not None or spec.host_port is not None or spec.count != 1:
        raise InvalidInput(f"{text!r}: explain takes one port, PORT[/tcp|udp|sctp]")
    return spec.port, spec.protocol


def matching(state: State, ns: str | None, port: int, protocol: str) -> list[tuple[PortMapping, int]]:
    """(mapping, offset in its range) of each published port that NS's PORT
    (or, without NS, the host port PORT) names."""
    if ns is not None:
        if ns not in state.sandboxes:
            raise NotFound(f"sandbox {ns} not found")
        owner = state.owner(ns)
        found = [(p, port - p.port) for p in state.ports
                 if p.sandbox == owner and p.protocol == protocol and p.port <= port < p.port + p.count]
        if not found:
            raise NotFound(f"sandbox {ns} has no published port {port}/{protocol}")
        return found
    found = [(p, port - p.host_port) for p in state.ports
             if p.protocol == protocol and p.host_port <= port < p.host_port + p.count]
    if not found:
        raise NotFound(f"no published host port {port}/{protocol}")
    return found


def explain(api, ns: str | None, port_text: str) -> list[Explanation]:
    """The path of each published port that NS's PORT[/PROTO] (without NS:
    the host port) names, read from api's state and the kernel (api: a Cnet)."""
    port, protocol = parse_port(port_text)
    state = api.read_state()
    found = matching(state, ns, port, protocol)
    backend = state.host.get("firewall") or api.config.firewall
    path = _Path(api.owner, backend)
    return [path.explain_one(state, p, offset) for p, offset in found]


class _Path:
    """Explains mappings for one state file's firewall (owner) on one
    backend; what the firewall holds is read once."""

    def __init__(self, owner, backend: str) -> None:
        self.owner, self.backend = owner, backend
        self._ruleset: list | None = None
        self._saved: dict[tuple[int, str], hostread.SavedTables | None] = {}

    @property
    def ruleset(self) -> fw.Ruleset | None:
        if self._ruleset is None:
            items = fw.ruleset()
            self._ruleset = [fw.Ruleset(items)] if items is not None else [None]
        return self._ruleset[0]

    def saved(self, family: int, table: str) -> hostread.SavedTables | None:
        if (family, table) not in self._saved:
            text = fw.iptables_save(family, table)
            self._saved[(family, table)] = hostread.parse_save(text) if text is not None else None
        return self._saved[(family, table)]

    def explain_one(self, state: State, p: PortMapping, offset: int) -> Explanation:
        family = 6 if ":" in p.host_ip else 4
        host_port, port = p.host_port + offset, p.port + offset
        bridge = firewall_needs(state.networks[p.network]).interface or p.network
        d = next((e for e in dnat_entries([p], state.endpoints) if e.host_port == host_port), None)
        done = Explanation(p, host_port, port, family, bridge, [])
        if d is None:
            done.steps.append(Step(1, "dnat", "missing", True, detail=f"sandbox {p.sandbox} has no IPv{family}"
                                   f" address on network {p.network} (its endpoint is gone; {RESTORE})"))
            return done
        bridges = tuple(i for n in state.networks.values() if (i := firewall_needs(n).interface))
        packet = fw.Packet(family, p.protocol, d.target_ip, d.target_port, bridge, bridges)
        if self.backend == "iptables":
            done.steps.append(self._iptables_dnat(d))
        else:
            done.steps.append(self._nft_dnat(d))
        done.steps += self._forward(packet)
        done.steps.append(_connections(d))
        if self.backend == "iptables":
            done.steps += self._iptables_masquerade(state, p, d, bridge)
        else:
            done.steps += self._nft_masquerade(d)
        done.steps.append(_forwarding(family))
        return done

    # -- 1. DNAT ----------------------------------------------------------------

    def _nft_dnat(self, d) -> Step:
        table = ("inet", self.owner.nft_table)
        name, key = nftables.map_of(d), nftables.key_of(d)
        step = Step(1, "dnat", f"dnat to {_at(d.target_ip, d.target_port)}", table=" ".join(table),
                    chain="published", tool="nft", cnet=True)
        rs = self.ruleset
        if rs is None:
            return _missing(step, "nft cannot list the ruleset")
        if (*table, "published") not in rs.chains:
            return _missing(step, f"table {step.table} or its chain published is missing ({RESTORE})")
        rule = rs.find(table, "published", lambda r: fw.uses_map(r, name))
        element = fw.map_element(rs, table, name, key)
        step.handle = rule["handle"] if rule else None
        if rule is None:
            return _missing(step, f"no rule of chain published uses map {name} ({RESTORE})")
        if element is None:
            return _missing(step, f"map {name} has no element {key} ({RESTORE})")
        if element != nftables.element_of(d):
            step.verdict, step.blocks = "wrong target", True
            step.detail = f"map {name} has element {element}, the state says {nftables.element_of(d)} ({RESTORE})"
            return step
        step.detail = f"map {name} element {element}"
        return step

    def _iptables_dnat(self, d) -> Step:
        chain = self.owner.iptables_chain("DNAT")
        step = Step(1, "dnat", f"dnat to {_at(d.target_ip, d.target_port)}", table="nat", chain=chain,
                    tool=TOOL[d.family], cnet=True)
        saved = self.saved(d.family, "nat")
        if saved is None:
            return _missing(step, f"{TOOL[d.family]}-save cannot list table nat")
        rule = fw.find_iptables_rule(saved, "nat", chain, lambda words: fw.is_dnat_rule(
            words, d.protocol, d.host_port, d.host_ip, _at(d.target_ip, d.target_port)))
        if rule is None:
            return _missing(step, f"chain {chain} has no DNAT rule for host port {d.host_port}/{d.protocol}"
                                  f" ({RESTORE})")
        step.rule, step.detail = rule.number, " ".join(rule.words)
        return step

    # -- 2. forward ---------------------------------------------------------------

    def _forward(self, packet: fw.Packet) -> list[Step]:
        """Every base chain on the forward hook, by priority; iptables' FORWARD
        where its table sits in nftables (iptables-nft), else last."""
        steps: list[Step] = []
        iptables_steps = self._iptables_forward(packet)
        variant = hostread.iptables_variant(packet.family)
        rs = self.ruleset
        own, seen_own = ("inet", self.owner.nft_table), False
        for key in rs.forward_chains(packet.family) if rs is not None else ():
            if variant == "nft" and hostread.iptables_nft_table(key[0], key[1]) and self.saved(
                    packet.family, "filter") is not None:
                steps += iptables_steps  # read through iptables-save: the rules as iptables shows them
                iptables_steps = []
            elif key[:2] == own:
                steps.append(_own_nft_forward(rs, key))
                seen_own = True
            else:
                steps.append(_foreign_nft_forward(rs, key, packet))
        if self.backend == "nftables" and not seen_own:
            steps.insert(0, _missing(Step(2, "forward", "", table=" ".join(own), chain="forward", tool="nft",
                                          cnet=True), f"cnet's forward chain is missing ({RESTORE})"))
        return steps + iptables_steps

    def _iptables_forward(self, packet: fw.Packet) -> list[Step]:
        saved = self.saved(packet.family, "filter")
        if saved is None or saved.forward() is None:
            if self.backend != "iptables":
                return []
            return [_missing(Step(2, "forward", "", table="filter", chain="FORWARD", tool=TOOL[packet.family],
                                  cnet=True), f"{TOOL[packet.family]}-save shows no FORWARD chain ({RESTORE})")]
        tool, prefix = TOOL[packet.family], self.owner.iptables_chain("")
        steps = []
        if self.backend == "iptables":
            steps.append(self._own_iptables_forward(saved, tool))
        decision = fw.iptables_forward(saved, packet, prefix)
        ours = [f"rule {r.number}" for r in fw.iptables_rules(saved, "filter", "FORWARD")
                if fw.iptables_comment(r.words).startswith(fw.CNET_COMMENT)
                or (fw.iptables_target(r.words) or "").startswith(prefix)]
        steps.append(_decided(Step(2, "forward", "", table="filter", chain=decision.chain, rule=decision.rule,
                                   tool=tool, cnet=decision.cnet_rule), decision,
                              lambda chain, n: f"{tool} filter {chain} rule {n}", ours))
        return steps

    def _own_iptables_forward(self, saved: hostread.SavedTables, tool: str) -> Step:
        chain = self.owner.iptables_chain("FORWARD")
        step = Step(2, "forward", "return", table="filter", chain=chain, tool=tool, cnet=True)
        jump = fw.find_iptables_rule(saved, "filter", "FORWARD", lambda w: fw.iptables_target(w) == chain)
        if jump is None:
            return _missing(step, f"FORWARD has no jump to {chain} ({RESTORE})")
        rule = fw.find_iptables_rule(saved, "filter", chain, lambda w: fw.iptables_target(w) == "RETURN"
                                     and "DNAT" in (fw.option(w, "--ctstate") or "").split(","))
        if rule is None:
            return _missing(step, f"chain {chain} has no rule letting published ports through ({RESTORE})")
        step.rule = rule.number
        step.detail = (f"{' '.join(rule.words)}: published ports go back to FORWARD (rule {jump.number} jumps"
                       " here), past cnet's drops")
        return step

    # -- 4. masquerade ---------------------------------------------------------------

    def _nft_masquerade(self, d) -> list[Step]:
        table = ("inet", self.owner.nft_table)
        rs = self.ruleset
        found = [("hairpin", lambda r: fw.is_hairpin(r, d.family),
                  "a sandbox reaching a published port by the host's address")]
        if d.family == 4:
            found.append(("localhost", fw.is_localhost, "the host reaching a published port on 127.0.0.1"))
        steps = []
        for name, wanted, what in found:
            rule = rs.find(table, "postrouting", wanted) if rs is not None else None
            step = Step(4, name, "masquerade", table=" ".join(table), chain="postrouting", tool="nft", cnet=True,
                        detail=what)
            if rule is None:
                step.verdict, step.detail = "missing", f"{what} gets no answer ({RESTORE})"
            else:
                step.handle = rule["handle"]
            steps.append(step)
        return steps

    def _iptables_masquerade(self, state: State, p: PortMapping, d, bridge: str) -> list[Step]:
        import ipaddress

        chain, tool = self.owner.iptables_chain("POSTROUTING"), TOOL[d.family]
        saved = self.saved(d.family, "nat")
        subnets = {ipaddress.ip_network(s.subnet) for s in state.networks[p.network].subnets}

        def from_subnet(words):
            source = fw.option(words, "-s")
            return (fw.iptables_target(words) == "MASQUERADE" and fw.option(words, "--ctstate") == "DNAT"
                    and source is not None and ipaddress.ip_network(source, strict=False) in subnets)

        def from_localhost(words):
            return (fw.iptables_target(words) == "MASQUERADE" and fw.option(words, "-s") == "127.0.0.0/8"
                    and fw.option(words, "-o") == bridge)

        found = [("hairpin", from_subnet, "a sandbox reaching a published port by the host's address")]
        if d.family == 4:
            found.append(("localhost", from_localhost, "the host reaching a published port on 127.0.0.1"))
        steps = []
        for name, wanted, what in found:
            rule = fw.find_iptables_rule(saved, "nat", chain, wanted) if saved is not None else None
            step = Step(4, name, "masquerade", table="nat", chain=chain, tool=tool, cnet=True, detail=what)
            if rule is None:
                step.verdict, step.detail = "missing", f"{what} gets no answer ({RESTORE})"
            else:
                step.rule = rule.number
            steps.append(step)
        return steps


def _missing(step: Step, why: str) -> Step:
    step.verdict, step.blocks, step.detail = "missing", True, why
    return step


def _at(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _decided(step: Step, decision: fw.Decision, where, cnet_rules: list[str]) -> Step:
    """A forward step from what a chain cnet does not own does with the packet.
    where(chain, rule): how a rule is named; cnet_rules: cnet's rules in it."""
    step.maybe = [f"{where(chain, rule)} ({verdict})" for chain, rule, verdict in decision.maybe]
    step.cnet_rules = cnet_rules
    policy = decision.rule is None
    if decision.verdict in ("accept", "continue"):
        step.verdict = "accept"  # a chain's accept lets the packet on to the next base chain
    else:
        step.verdict = decision.verdict if decision.certain else f"may {decision.verdict}"
        step.blocks = decision.certain
    said = ["by cnet's rule" if step.cnet else "by the chain's policy" if policy else "by a rule not cnet's"]
    if not decision.certain:
        said.append("a rule before it matches on what cnet cannot know (the source, the input interface, ...)")
    said.append(f"cnet's rules here: {', '.join(cnet_rules)}" if cnet_rules else "no rule of cnet's here")
    step.detail = "; ".join(said)
    return step


def _own_nft_forward(rs: fw.Ruleset, key: tuple) -> Step:
    step = Step(2, "forward", "accept", table=f"{key[0]} {key[1]}", chain=key[2], tool="nft", cnet=True)
    rule = rs.find(key[:2], key[2], fw.is_ct_dnat_accept)
    if rule is None:
        return _missing(step, f"chain {key[2]} has no `ct status dnat accept` ({RESTORE})")
    step.handle, step.detail = rule["handle"], "ct status dnat accept: published ports, from any network"
    return step


def _foreign_nft_forward(rs: fw.Ruleset, key: tuple, packet: fw.Packet) -> Step:
    table = f"{key[0]} {key[1]}"
    decision = fw.follow_chain(rs, key, packet)
    ours = [f"handle {r['handle']}" for r in rs.rules.get(key, [])
            if (r.get("comment") or "").startswith(fw.CNET_COMMENT)]
    return _decided(Step(2, "forward", "", table=table, chain=decision.chain, handle=decision.rule, tool="nft",
                         cnet=decision.cnet_rule), decision, lambda chain, handle: f"{table} {chain} handle {handle}",
                    ours)


def _connections(d) -> Step:
    from ..kernel import conntrack

    found = conntrack.connections_to(d.family, d.protocol, d.host_port, d.target_ip)
    shown = [f"{c.source} -> {c.destination} (to {c.translated_to})" for c in found[:SHOWN]]
    detail = "; ".join(shown) + ("; ..." if len(found) > SHOWN else "")
    return Step(3, "conntrack", f"{len(found)} connection(s)", count=len(found), detail=detail,
                connections=[c._asdict() for c in found[:SHOWN]])


def _forwarding(family: int) -> Step:
    from ..errors import OperationFailed
    from ..kernel import sysctl

    key = FORWARDING[family]
    try:
        value = sysctl.read(key)
    except OperationFailed:
        value = "missing"
    if value == "1":
        return Step(4, "sysctl", "on", sysctl=key)
    return Step(4, "sysctl", "off", True, sysctl=key,
                detail=f"it is {value}; `cnet restore` sets it to 1 (or sysctl -w {key}=1)")
