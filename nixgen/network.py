"""Networks as objects: interface names, MACs and static addresses, and both sides' settings.

:func:`plan_networks` works out, for every guest of every network of every
host, the interface the guest gets (a unique name of at most 15 characters,
``vm-<guest>`` unless given; a MAC from :func:`~nixgen.model.stable_mac`)
and its static addresses (from the network's ranges, in the order of its
``guests``, or as pinned in ``addresses``).  Everything it cannot do is a
:class:`~nixgen.errors.Problem` with the path of the setting and the guests
involved: colliding addresses, ranges with no address left, names that do
not fit.  :mod:`nixgen.validate` reports them with the other problems.

:func:`guest_side` and :func:`host_side` turn the plan into the NixOS
settings nixgen writes (plain values; :mod:`nixgen.nix.emit` writes the
text), following upstream's network guides:

- bridge: a systemd-networkd bridge (``microvm``) holding the host's
  addresses, the guests' taps attached to it by name, optional forwarding
  and NAT (``networking.nat``);
- routed: one ``.network`` per tap with the host's address as /32 (/128)
  and a host route to the guest, forwarding on; the guest routes everything
  through the host on-link; optional proxy ARP on the uplink;
- macvtap: nothing on the host (microvm.nix creates the interfaces on the
  link); the guest takes an address of that LAN.

The guest always gets a systemd-networkd ``.network`` matching its MAC with
the static addresses, the gateway (or routes) and the DNS servers.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from nixgen.errors import Problem, keyed
from nixgen.hypervisors import TABLE
from nixgen.model import Flake, Host, Interface, MicroVM, Network, stable_mac, tap_id
from nixgen.model.devices import MacvtapOptions
from nixgen.model.host import IFNAME_MAX

__all__ = [
    "Attachment",
    "NetworkPlan",
    "guest_side",
    "host_side",
    "plan_networks",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# What a Linux interface name may hold here: no '/', ':', whitespace or quotes.
_IFNAME = re.compile(r"[A-Za-z0-9_.+-]+\Z")


@attrs.frozen
class Attachment:
    """One guest on one network: its interface and its addresses.

    ``addresses`` are as the guest configures them (``10.0.0.2/24`` on a
    bridge, ``10.0.0.1/32`` on a routed network); ``host_addresses`` are the
    host's on this network (what routed guests route through).
    """

    host: str
    network: str
    guest: str
    type: str
    id: str
    mac: str
    addresses: tuple[IPInterface, ...] = ()
    host_addresses: tuple[IPInterface, ...] = ()
    gateways: tuple[IPAddress, ...] = ()

    @property
    def interface_type(self) -> str:
        return "macvtap" if self.type == "macvtap" else "tap"

    def address(self, version: int) -> IPInterface | None:
        return next((a for a in self.addresses if a.version == version), None)


@attrs.frozen
class NetworkPlan:
    """Every attachment of a flake's networks, and the problems found making them."""

    attachments: tuple[Attachment, ...] = ()
    problems: tuple[Problem, ...] = ()
    #: ((host, network), the host's addresses on it), for every network with a range
    host_addresses: tuple[tuple[tuple[str, str], tuple[IPInterface, ...]], ...] = ()

    def addresses_of_host(self, host: str, network: str) -> tuple[IPInterface, ...]:
        """The host's own addresses on a network (with the range's prefix)."""
        return next((a for k, a in self.host_addresses if k == (host, network)), ())

    def of_guest(self, guest: str) -> tuple[Attachment, ...]:
        return tuple(a for a in self.attachments if a.guest == guest)

    def of_network(self, host: str, network: str) -> tuple[Attachment, ...]:
        return tuple(a for a in self.attachments if a.host == host and a.network == network)

    def of_host(self, host: str) -> tuple[Attachment, ...]:
        return tuple(a for a in self.attachments if a.host == host)

    def by_guest(self) -> dict[str, tuple[Attachment, ...]]:
        """``{guest: attachments}`` for the guests on any network."""
        out: dict[str, list[Attachment]] = {}
        for a in self.attachments:
            out.setdefault(a.guest, []).append(a)
        return {k: tuple(v) for k, v in out.items()}


# ----------------------------------------------------------------- planning


class _Planner:
    def __init__(self, flake: Flake) -> None:
        self.flake = flake
        self.guests = {g.name: g for g in flake.guests}
        self.problems: list[Problem] = []
        self.attachments: list[Attachment] = []
        self.host_addresses: dict[tuple[str, str], tuple[IPInterface, ...]] = {}
        # MAC → "guest 'x'" over the whole flake (a MAC must be unique on any segment)
        self.macs: dict[str, str] = {}
        for vm in flake.guests:
            for iface in vm.resolved_interfaces():
                if iface.mac:
                    self.macs.setdefault(iface.mac.lower(), vm.name)

    def error(self, path: str, message: str, hint: str, value: object = None) -> None:
        self.problems.append(Problem(path=path, message=message, hint=hint, value=value))

    def warn(self, path: str, message: str, hint: str, value: object = None) -> None:
        self.problems.append(
            Problem(path=path, message=message, hint=hint, value=value, warning=True)
        )

    # ------------------------------------------------------------- one host

    def host(self, host: Host) -> None:
        at = keyed("hosts", host.name)
        runs = set(host.guest_names)
        # How many of this host's networks each guest is on: decides the default id.
        count: dict[str, int] = {}
        for net in host.networks:
            for guest in dict.fromkeys(net.guests):
                count[guest] = count.get(guest, 0) + 1
        # Host interface names → what owns them, for collisions.
        names: dict[str, str] = {}
        for name in sorted(runs):
            vm = self.guests.get(name)
            for i, iface in enumerate(vm.interfaces if vm else ()):
                if iface.type in ("tap", "macvtap"):
                    names.setdefault(iface.id, f"guest {name!r} (interfaces[{i}])")
        bridges: dict[str, str] = {}
        ranges: list[tuple[IPNetwork, str]] = []
        nat_external: str | None = None
        for net in host.networks:
            net_at = keyed(f"{at}.networks", net.name)
            if net.type == "bridge":
                bridge = net.bridge_name
                owner = names.get(bridge)
                if bridge in bridges:
                    self.error(
                        f"{net_at}.bridge",
                        f"network {bridges[bridge]!r} uses the same bridge",
                        "give each bridge network its own bridge name",
                        bridge,
                    )
                elif owner is not None:
                    self.error(
                        f"{net_at}.bridge",
                        f"is also the interface name of {owner}",
                        "rename the bridge or the interface",
                        bridge,
                    )
                else:
                    self._ifname(f"{net_at}.bridge", bridge, "bridge name")
                bridges.setdefault(bridge, net.name)
                names.setdefault(bridge, f"the bridge of network {net.name!r}")
            if net.nat and net.external_interface:
                nat_external = nat_external or net.external_interface
                if nat_external != net.external_interface:
                    self.error(
                        f"{net_at}.externalInterface",
                        f"another network of this host masquerades out of {nat_external!r}; "
                        "NixOS's networking.nat has one external interface",
                        f'use externalInterface = "{nat_external}" on every network with nat',
                        net.external_interface,
                    )
            self.network(host, net, net_at, runs, count, names, ranges)

    def network(
        self,
        host: Host,
        net: Network,
        at: str,
        runs: set[str],
        count: Mapping[str, int],
        names: dict[str, str],
        ranges: list[tuple[IPNetwork, str]],
    ) -> None:
        self._settings(net, at)
        members: list[tuple[int, str]] = []
        seen: set[str] = set()
        for i, guest in enumerate(net.guests):
            where = f"{at}.guests[{i}]"
            if guest in seen:
                self.error(where, "is listed twice", "list each guest once", guest)
                continue
            seen.add(guest)
            vm = self.guests.get(guest)
            if vm is None:
                self.error(
                    where,
                    "names no guest of this flake",
                    "use one of " + (", ".join(self.guests) or "(no guests)"),
                    guest,
                )
                continue
            if guest not in runs:
                self.error(
                    where,
                    f"guest {guest!r} does not run on host {host.name!r}",
                    f'add it to the host: [hosts.{host.name}.vms.{guest}] (Python: vms=["{guest}"])',
                    guest,
                )
                continue
            wanted = "macvtap" if net.type == "macvtap" else "tap"
            caps = TABLE.get(vm.hypervisor)
            if caps is not None and wanted not in caps.interface_types:
                self.error(
                    where,
                    f"guest {guest!r} runs on {vm.hypervisor}, which has no {wanted} interfaces",
                    "use a hypervisor with "
                    + wanted
                    + " interfaces: "
                    + ", ".join(n for n, c in TABLE.items() if wanted in c.interface_types),
                    guest,
                )
                continue
            members.append((i, guest))
        for table, what in ((net.addresses, "addresses"), (net.ids, "ids")):
            for guest in table:
                if guest not in seen:
                    self.error(
                        keyed(f"{at}.{what}", guest),
                        f"names no guest of network {net.name!r}",
                        "add the guest to `guests`, or remove this entry",
                    )
        families = self._ranges(host, net, at, ranges)
        for guest, values in net.addresses.items():
            for j, value in enumerate(values):
                where = f"{keyed(f'{at}.addresses', guest)}[{j}]"
                address = _ip(value)
                if address is None:
                    self.error(where, "is not an IP address", "write e.g. 10.0.0.7", value)
                elif (net.ipv4 if address.version == 4 else net.ipv6) is None:
                    self.error(
                        where,
                        f"the network has no IPv{address.version} range",
                        f"set ipv{address.version}, or remove this address",
                        value,
                    )
        # Interface names and MACs.
        ids: dict[str, str] = {}
        for i, guest in members:
            pinned = net.ids.get(guest)
            if pinned is not None:
                where = keyed(f"{at}.ids", guest)
                if not self._ifname(where, pinned, f"interface id of guest {guest!r}"):
                    continue
                ident = pinned
            else:
                where = f"{at}.guests[{i}]"
                ident = tap_id(guest if count.get(guest, 0) <= 1 else f"{guest}-{net.name}")
            owner = names.get(ident)
            if owner is not None:
                self.error(
                    where,
                    f"guest {guest!r} would get the interface name {ident!r}, "
                    f"which is already that of {owner}",
                    f'set another one in [hosts.{host.name}.networks.{net.name}.ids] ({guest} = "…")',
                    ident,
                )
                continue
            names[ident] = f"guest {guest!r} on network {net.name!r}"
            ids[guest] = ident
        # Addresses.
        assigned: dict[str, list[IPInterface]] = {g: [] for _, g in members}
        hosts_by_family: dict[int, tuple[IPInterface, ...]] = {}
        gateways: dict[int, IPAddress] = {}
        for family in families:
            picked = self._addresses(net, at, family, [g for _, g in members])
            for guest, iface in picked.items():
                assigned[guest].append(iface)
            hosts_by_family[family.version] = family.host_addresses
            self.host_addresses[(host.name, net.name)] = (
                *self.host_addresses.get((host.name, net.name), ()),
                *family.host_addresses,
            )
            if family.gateway is not None:
                gateways[family.version] = family.gateway
        for _, guest in members:
            if guest not in ids:
                continue
            ident = ids[guest]
            mac = stable_mac(guest, ident)
            other = self.macs.get(mac)
            if other is not None and other != guest:
                self.error(
                    keyed(f"{at}.ids", guest),
                    f"the MAC nixgen derives ({mac}) is also that of guest {other!r}",
                    "give the interface another id",
                    ident,
                )
                continue
            self.macs[mac] = guest
            self.attachments.append(
                Attachment(
                    host=host.name,
                    network=net.name,
                    guest=guest,
                    type=net.type,
                    id=ident,
                    mac=mac,
                    addresses=tuple(assigned[guest]),
                    host_addresses=tuple(h for v in (4, 6) for h in hosts_by_family.get(v, ())),
                    gateways=tuple(gateways[v] for v in (4, 6) if v in gateways),
                )
            )

    def default_routes(self) -> None:
        """A guest with a default route on two networks gets a warning."""
        first: dict[str, str] = {}
        for a in self.attachments:
            host = next(h for h in self.flake.hosts if h.name == a.host)
            net = host.network(a.network)
            if not (net.default_route and a.gateways):
                continue
            if a.guest in first:
                index = list(net.guests).index(a.guest)
                self.warn(
                    f"{keyed(keyed('hosts', a.host) + '.networks', a.network)}.guests[{index}]",
                    f"guest {a.guest!r} also has a default route on network {first[a.guest]!r}",
                    "set defaultRoute = false on one of the two networks",
                    a.guest,
                )
            first.setdefault(a.guest, a.network)

    def _ifname(self, path: str, name: str, what: str) -> bool:
        if len(name) > IFNAME_MAX:
            self.error(
                path,
                f"the {what} has {len(name)} characters; Linux interface names have at most 15",
                "use a shorter name",
                name,
            )
            return False
        if not _IFNAME.match(name):
            self.error(
                path,
                f"the {what} is not a valid interface name",
                "use letters, digits and . _ + -",
                name,
            )
            return False
        return True

    def _settings(self, net: Network, at: str) -> None:
        """Settings that do not fit the network's type."""
        if net.type != "bridge" and net.bridge is not None:
            self.error(
                f"{at}.bridge",
                f"only bridge networks have a bridge; this one is {net.type}",
                "remove bridge",
                net.bridge,
            )
        if net.type == "macvtap":
            if not net.link:
                self.error(
                    f"{at}.link",
                    "a macvtap network needs the host link its interfaces sit on",
                    'set link = "eno1" (the host\'s LAN interface)',
                )
            if net.nat:
                self.error(
                    f"{at}.nat",
                    "macvtap guests sit on the LAN of the link; the host cannot NAT them",
                    "remove nat, or use a bridge network",
                )
            if net.host_address:
                self.error(
                    f"{at}.hostAddress",
                    "the host has no address on a macvtap network",
                    "remove hostAddress",
                )
        elif net.macvtap_mode != "bridge":
            self.warn(
                f"{at}.macvtapMode",
                f"has no effect on a {net.type} network",
                "remove macvtapMode",
                net.macvtap_mode,
            )
        if net.proxy_arp:
            if net.type != "routed":
                self.error(
                    f"{at}.proxyArp",
                    "proxy ARP is for routed networks",
                    "remove proxyArp",
                )
            elif not net.link:
                self.error(
                    f"{at}.proxyArp",
                    "proxy ARP answers for the guests on the host's uplink, which is not set",
                    'set link = "eno1"',
                )
            elif not net.ipv4:
                self.error(
                    f"{at}.proxyArp",
                    "proxy ARP is IPv4; this network has no ipv4 range",
                    "set ipv4, or remove proxyArp",
                )
        if net.link is not None and net.type != "macvtap":
            self._ifname(f"{at}.link", net.link, "link")
        if net.external_interface is not None and not net.nat:
            self.warn(
                f"{at}.externalInterface",
                "has no effect without nat",
                "set nat = true, or remove externalInterface",
                net.external_interface,
            )
        if net.nat and not (net.ipv4 or net.ipv6):
            self.error(f"{at}.nat", "NAT needs an address range", "set ipv4 (and/or ipv6)")
        if net.type == "routed" and not (net.ipv4 or net.ipv6):
            self.error(
                f"{at}.ipv4",
                "a routed network needs an address range: its routes are per address",
                'set ipv4 = "10.0.0.0/24" (and/or ipv6)',
            )
        for i, server in enumerate(net.dns):
            if _ip(server) is None:
                self.error(f"{at}.dns[{i}]", "is not an IP address", 'write e.g. "9.9.9.9"', server)

    def _ranges(
        self, host: Host, net: Network, at: str, ranges: list[tuple[IPNetwork, str]]
    ) -> list[_Family]:
        families: list[_Family] = []
        for version, text in ((4, net.ipv4), (6, net.ipv6)):
            if text is None:
                continue
            key = "ipv4" if version == 4 else "ipv6"
            where = f"{at}.{key}"
            try:
                network = ipaddress.ip_network(text, strict=True)
            except ValueError as err:
                self.error(
                    where,
                    f"is not an IPv{version} range: {err}",
                    'write the network address and prefix, e.g. "10.0.0.0/24"'
                    if version == 4
                    else 'write the network address and prefix, e.g. "fd00:1::/64"',
                    text,
                )
                continue
            if network.version != version:
                self.error(
                    where,
                    f"is an IPv{network.version} range",
                    f"put it under ipv{network.version}",
                    text,
                )
                continue
            for other, other_net in ranges:
                if other.version == network.version and other.overlaps(network):
                    self.error(
                        where,
                        f"overlaps the range of network {other_net!r} ({other}) on this host",
                        "give each network of a host its own range",
                        text,
                    )
            ranges.append((network, net.name))
            family = self._family(net, at, network)
            if family is not None:
                families.append(family)
        for kind, values in (("hostAddress", net.host_address), ("gateway", net.gateway)):
            for i, value in enumerate(values):
                address = _ip(value)
                if address is None:
                    self.error(f"{at}.{kind}[{i}]", "is not an IP address", "write e.g. 10.0.0.1")
                elif not any(f.network.version == address.version for f in families):
                    self.error(
                        f"{at}.{kind}[{i}]",
                        f"the network has no IPv{address.version} range",
                        f"set ipv{address.version}, or remove this address",
                        value,
                    )
        return families

    def _family(self, net: Network, at: str, network: IPNetwork) -> _Family | None:
        """The host's and the gateway's addresses, and what guests may not take."""
        version = network.version
        routed = net.type == "routed"
        hosts: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = []
        for i, value in enumerate(net.host_address):
            address = _ip(value)
            if address is None or address.version != version:
                continue
            if address not in network and not routed:
                self.error(
                    f"{at}.hostAddress[{i}]",
                    f"is outside the network's range {network}",
                    "use an address of the range",
                    value,
                )
                continue
            prefix = network.max_prefixlen if address not in network else network.prefixlen
            hosts.append(ipaddress.ip_interface(f"{address}/{prefix}"))
        if not hosts and net.type != "macvtap":
            if network.num_addresses < (1 if routed else 2):
                self.error(
                    f"{at}.ipv{version}",
                    "leaves no address for the host",
                    "use a larger range",
                    str(network),
                )
                return None
            # Routed: the network's own address (every address is usable with
            # host routes), as upstream's routed guide; bridge: the first one.
            first = network.network_address if routed else network.network_address + 1
            hosts.append(ipaddress.ip_interface(f"{first}/{network.prefixlen}"))
        gateway: IPAddress | None = None
        for i, value in enumerate(net.gateway):
            address = _ip(value)
            if address is None or address.version != version:
                continue
            if gateway is not None:
                self.error(
                    f"{at}.gateway[{i}]",
                    f"is a second IPv{version} gateway",
                    "give one gateway per address family",
                    value,
                )
                continue
            if not routed and address not in network:
                self.error(
                    f"{at}.gateway[{i}]",
                    f"is outside the network's range {network}: the guests cannot reach it",
                    "use an address of the range",
                    value,
                )
                continue
            gateway = address
        if gateway is None and net.default_route:
            if hosts:
                gateway = hosts[0].ip
            elif net.type == "macvtap":
                self.error(
                    f"{at}.gateway",
                    f"a macvtap network needs the LAN's router as IPv{version} gateway",
                    'set gateway = ["192.168.1.1"], or defaultRoute = false',
                )
        reserved: set[IPAddress] = {h.ip for h in hosts}
        if gateway is not None:
            reserved.add(gateway)
        if not routed and network.num_addresses > 2:
            # IPv4: the network and broadcast addresses; IPv6: the subnet-router anycast.
            reserved.add(network.network_address)
            if version == 4:
                reserved.add(network.broadcast_address)
        return _Family(
            network=network,
            host_addresses=tuple(hosts),
            gateway=gateway,
            reserved=frozenset(reserved),
            routed=routed,
        )

    def _addresses(
        self, net: Network, at: str, family: _Family, guests: Sequence[str]
    ) -> dict[str, IPInterface]:
        """Each guest's address of one family: pinned ones first, then the next free."""
        network = family.network
        prefix = network.max_prefixlen if family.routed else network.prefixlen
        taken: dict[IPAddress, str] = {}
        out: dict[str, IPInterface] = {}
        for guest in guests:
            for j, value in enumerate(net.addresses.get(guest, ())):
                where = f"{keyed(f'{at}.addresses', guest)}[{j}]"
                address = _ip(value)
                if address is None or address.version != family.version:
                    continue
                if address not in network:
                    self.error(
                        where,
                        f"is outside the network's range {network}",
                        "use an address of the range",
                        value,
                    )
                    continue
                if guest in out:
                    self.error(
                        where,
                        f"is a second IPv{family.version} address for guest {guest!r}",
                        "pin one address per family",
                        value,
                    )
                    continue
                if address in family.reserved:
                    self.error(
                        where,
                        "is the host's, the gateway's, or the network's own address",
                        "pin another address",
                        value,
                    )
                    continue
                owner = taken.get(address)
                if owner is not None:
                    self.error(
                        where,
                        f"guests {owner!r} and {guest!r} would share this address",
                        "give each guest its own address",
                        value,
                    )
                    continue
                taken[address] = guest
                out[guest] = ipaddress.ip_interface(f"{address}/{prefix}")
        free = _free(network, family.reserved, taken)
        left: list[str] = []
        for guest in guests:
            if guest in out:
                continue
            address = next(free, None)
            if address is None:
                left.append(guest)
                continue
            out[guest] = ipaddress.ip_interface(f"{address}/{prefix}")
        if left:
            self.error(
                f"{at}.ipv{family.version}",
                f"range {network} has no address left for guest(s) "
                + ", ".join(repr(g) for g in left),
                "use a larger range, or fewer guests on this network",
                str(network),
            )
        return out


@attrs.frozen
class _Family:
    network: IPNetwork
    host_addresses: tuple[IPInterface, ...]
    gateway: IPAddress | None
    reserved: frozenset[IPAddress]
    routed: bool

    @property
    def version(self) -> int:
        return self.network.version


def _free(
    network: IPNetwork, reserved: frozenset[IPAddress], taken: Mapping[IPAddress, str]
) -> Iterator[IPAddress]:
    """The addresses of ``network`` guests may take, lowest first (lazily: IPv6 is large)."""
    address = network.network_address
    last = network.broadcast_address
    while True:
        if address not in reserved and address not in taken:
            yield address
        if address == last:
            return
        address = address + 1


def _ip(value: object) -> IPAddress | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def plan_networks(flake: Flake) -> NetworkPlan:
    """Interfaces and addresses of every guest on every network, and the problems found.

    Pure and deterministic: the same flake always gives the same plan.
    """
    planner = _Planner(flake)
    for host in flake.hosts:
        planner.host(host)
    planner.default_routes()
    return NetworkPlan(
        tuple(planner.attachments),
        tuple(planner.problems),
        tuple(planner.host_addresses.items()),
    )


# ----------------------------------------------------------------- NixOS settings


def guest_interfaces(
    attachments: Iterable[Attachment], networks: Mapping[tuple[str, str], Network]
) -> list[Interface]:
    """The ``microvm.interfaces`` entries of a guest's attachments."""
    out = []
    for a in attachments:
        net = networks[(a.host, a.network)]
        if a.type == "macvtap":
            out.append(
                Interface(
                    type="macvtap",
                    id=a.id,
                    mac=a.mac,
                    macvtap=MacvtapOptions(link=net.link or "", mode=net.macvtap_mode),
                )
            )
        else:
            out.append(Interface(type="tap", id=a.id, mac=a.mac))
    return out


def guest_side(
    vm: MicroVM, attachments: Sequence[Attachment], networks: Mapping[tuple[str, str], Network]
) -> tuple[list[Interface], dict[str, Any]]:
    """The interfaces to add to a guest, and its NixOS network settings.

    One systemd-networkd ``.network`` per attachment (``10-<network>``),
    matched by MAC so that several interfaces never mix.
    """
    if not attachments:
        return [], {}
    units: dict[str, Any] = {}
    for a in attachments:
        net = networks[(a.host, a.network)]
        unit: dict[str, Any] = {"matchConfig": {"MACAddress": a.mac}}
        if a.addresses:
            unit["address"] = [str(x) for x in a.addresses]
        if a.type == "routed":
            routes: list[dict[str, Any]] = []
            for host_address in a.host_addresses:
                if a.address(host_address.version) is None:
                    continue
                routes.append({"Destination": f"{host_address.ip}/{host_address.max_prefixlen}"})
                routes[-1]["GatewayOnLink"] = True
            if net.default_route:
                for gateway in a.gateways:
                    if a.address(gateway.version) is None:
                        continue
                    default = "0.0.0.0/0" if gateway.version == 4 else "::/0"
                    routes.append(
                        {"Destination": default, "Gateway": str(gateway), "GatewayOnLink": True}
                    )
            if routes:
                unit["routes"] = routes
        elif net.default_route and a.gateways:
            unit["gateway"] = [str(g) for g in a.gateways if a.address(g.version) is not None]
        if net.dns:
            unit["dns"] = list(net.dns)
        unit["networkConfig"] = {"DHCP": "no" if a.addresses else "yes"}
        units[f"10-{a.network}"] = unit
    settings = {
        "networking": {"useNetworkd": True},
        "systemd": {"network": {"enable": True, "networks": units}},
    }
    return guest_interfaces(attachments, networks), settings


def host_side(host: Host, plan: NetworkPlan) -> dict[str, Any]:
    """The host's NixOS network settings for its networks (empty without any)."""
    if not host.networks:
        return {}
    netdevs: dict[str, Any] = {}
    units: dict[str, Any] = {}
    nat_interfaces: list[str] = []
    nat_ips: list[str] = []
    nat_ipv6s: list[str] = []
    nat_v6 = False
    external: str | None = None
    sysctl: dict[str, Any] = {}
    for net in host.networks:
        members = plan.of_network(host.name, net.name)
        v4 = net.ipv4 is not None
        v6 = net.ipv6 is not None
        forwarding: dict[str, Any] = {}
        if net.forwarding:
            if v4:
                forwarding["IPv4Forwarding"] = True
            if v6:
                forwarding["IPv6Forwarding"] = True
        if net.type == "bridge":
            bridge = net.bridge_name
            netdevs[f"10-{bridge}"] = {"netdevConfig": {"Kind": "bridge", "Name": bridge}}
            unit: dict[str, Any] = {"matchConfig": {"Name": bridge}}
            host_addresses = _host_addresses(host, net, plan)
            if host_addresses:
                unit["address"] = host_addresses
            unit["networkConfig"] = {"ConfigureWithoutCarrier": True, **forwarding}
            units[f"10-{bridge}"] = unit
            ports = [a.id for a in members] + ([net.link] if net.link else [])
            if ports:
                units[f"11-{bridge}"] = {
                    "matchConfig": {"Name": ports},
                    "networkConfig": {"Bridge": bridge},
                }
            if net.nat:
                nat_interfaces.append(bridge)
        elif net.type == "routed":
            for a in members:
                unit = {"matchConfig": {"Name": a.id}}
                mine = [f"{h.ip}/{h.max_prefixlen}" for h in a.host_addresses]
                if mine:
                    unit["address"] = mine
                routes = [{"Destination": f"{x.ip}/{x.max_prefixlen}"} for x in a.addresses]
                if routes:
                    unit["routes"] = routes
                if forwarding:
                    unit["networkConfig"] = dict(forwarding)
                units[f"20-{a.id}"] = unit
            if net.nat:
                if net.ipv4:
                    nat_ips.append(net.ipv4)
                if net.ipv6:
                    nat_ipv6s.append(net.ipv6)
            if net.proxy_arp and net.link:
                sysctl[f"net.ipv4.conf.{net.link}.proxy_arp"] = 1
        if net.nat:
            nat_v6 = nat_v6 or v6
            external = external or net.external_interface
    settings: dict[str, Any] = {}
    network: dict[str, Any] = {}
    if netdevs or units:
        network["enable"] = True
    if netdevs:
        network["netdevs"] = netdevs
    if units:
        network["networks"] = units
    if network:
        settings["systemd"] = {"network": network}
    if nat_interfaces or nat_ips or nat_ipv6s:
        nat: dict[str, Any] = {"enable": True}
        if nat_v6:
            nat["enableIPv6"] = True
        if nat_interfaces:
            nat["internalInterfaces"] = nat_interfaces
        if nat_ips:
            nat["internalIPs"] = nat_ips
        if nat_ipv6s:
            nat["internalIPv6s"] = nat_ipv6s
        if external:
            nat["externalInterface"] = external
        settings["networking"] = {"nat": nat}
    if sysctl:
        settings["boot"] = {"kernel": {"sysctl": sysctl}}
    return settings


def _host_addresses(host: Host, net: Network, plan: NetworkPlan) -> list[str]:
    """The host's addresses on a bridge (with the range's prefix)."""
    return [str(a) for a in plan.addresses_of_host(host.name, net.name)]
