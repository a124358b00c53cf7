"""A generated fleet for the graph tests and benchmark: hosts with every kind of network.

Each host runs ``per_host`` guests: about 60 % on a bridge (IPv4 and IPv6,
NAT), 25 % on a routed network (the first two bridge guests on it too),
10 % on macvtap, and the rest on QEMU's user networking with a forwarded
port.  Hypervisors vary with what each network allows.  The fleet validates.
"""

from __future__ import annotations

from nixgen import Flake, ForwardPort, Host, HostVM, Interface, MicroVM, Network, Share

HOST_NAMES = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")
_TAP = ("qemu", "cloud-hypervisor", "firecracker", "crosvm")
_MACVTAP = ("qemu", "cloud-hypervisor", "crosvm")


def host_name(index: int) -> str:
    base = HOST_NAMES[index % len(HOST_NAMES)]
    return base if index < len(HOST_NAMES) else f"{base}{index // len(HOST_NAMES)}"


def make_fleet(hosts: int = 5, per_host: int = 40) -> Flake:
    guests: list[MicroVM] = []
    host_list: list[Host] = []
    for h in range(hosts):
        name = host_name(h)
        bridge_n = max(1, per_host * 6 // 10)
        routed_n = per_host // 4
        macvtap_n = per_host // 10
        names = [f"{name}-vm{j:03d}" for j in range(per_host)]
        lan = names[:bridge_n]
        dmz = names[bridge_n : bridge_n + routed_n]
        uplink = names[bridge_n + routed_n : bridge_n + routed_n + macvtap_n]
        user = names[bridge_n + routed_n + macvtap_n :]
        for j, guest in enumerate(names):
            if guest in user:
                guests.append(
                    MicroVM(
                        name=guest,
                        hypervisor="qemu",
                        interfaces=[Interface.user()],
                        forward_ports=[ForwardPort.tcp(2200 + j, 22)],
                        shares=[Share.ro_store("9p")],
                    )
                )
                continue
            table = _MACVTAP if guest in uplink else _TAP
            hypervisor = table[j % len(table)]
            shares = [] if hypervisor == "firecracker" else [Share.ro_store("virtiofs")]
            guests.append(
                MicroVM(
                    name=guest,
                    hypervisor=hypervisor,  # type: ignore[arg-type]
                    vcpu=1 + j % 4,
                    mem=256 * (1 + j % 4),
                    shares=shares,
                )
            )
        networks = [
            Network.bridged(
                "lan",
                lan,
                ipv4=f"10.{h}.0.0/16",
                ipv6=f"fd00:{h:x}::/64",
                nat=True,
                external_interface="eno1",
                dns=["9.9.9.9"],
            )
        ]
        if dmz:
            networks.append(
                Network.routed(
                    "dmz", [*lan[:2], *dmz], ipv4=f"192.168.{h}.0/24", default_route=False
                )
            )
        if uplink:
            networks.append(
                Network.macvtap_on(
                    "uplink",
                    "eno1",
                    uplink,
                    ipv4=f"172.16.{h}.0/24",
                    gateway=[f"172.16.{h}.254"],
                    addresses={uplink[0]: [f"172.16.{h}.200"]},
                )
            )
        host_list.append(
            Host(
                name=name,
                vms=[HostVM(name=n) for n in names],
                networks=networks,
                nixos_configuration=True,
                target_host=f"root@{name}.example.org",
            )
        )
    return Flake(guests=guests, hosts=host_list)
