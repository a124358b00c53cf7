"""Hosts and networks: the model, the data file, the rules, the plan and the rendered Nix."""

from __future__ import annotations

import ipaddress
from pathlib import Path, PurePosixPath

import pytest

from nixgen import (
    Flake,
    Host,
    HostVM,
    Input,
    Interface,
    MicroVM,
    Network,
    Nix,
    ValidationError,
    check,
    dumps_json,
    dumps_toml,
    loads_flake,
    plan_networks,
    render_files,
    validate,
    write_project,
)
from nixgen.model import stable_mac, tap_id
from nixgen.model.convert import flake_from_dict, flake_to_dict, host_from_dict
from nixgen.render import host_module
from nixgen.starters import Choices, build_template


def guests(*names: str, **kw: object) -> list[MicroVM]:
    return [MicroVM(name=n, **kw) for n in names]  # type: ignore[arg-type]


def fleet(
    *networks: Network, vms: tuple[str, ...] = ("web", "db", "cache"), **host: object
) -> Flake:
    return Flake(
        guests=guests("web", "db", "cache"),
        hosts=[Host(name="alpha", vms=[HostVM(name=n) for n in vms], networks=networks, **host)],  # type: ignore[arg-type]
    )


def errors(flake: Flake) -> list[str]:
    return [f"{p.path}: {p.message}" for p in check(flake) if not p.warning]


def warnings(flake: Flake) -> list[str]:
    return [f"{p.path}: {p.message}" for p in check(flake) if p.warning]


LAN = Network.bridged("lan", ["web", "db", "cache"], ipv4="10.0.0.0/24", ipv6="fd00:1::/64")


# ----------------------------------------------------------------- model and data


def test_host_takes_names_and_finds_its_guests() -> None:
    host = Host(name="alpha", vms=["web", HostVM(name="db", mode="config")])  # type: ignore[list-item]
    assert host.guest_names == ("web", "db")
    assert host.vm("db").mode == "config"
    assert host.ssh_target == "alpha"
    assert host.evolve(target_host="root@10.1.1.1").ssh_target == "root@10.1.1.1"
    with pytest.raises(KeyError, match="runs: web, db"):
        host.vm("cache")
    flake = fleet(LAN)
    assert flake.host_of("db") == flake.host("alpha")
    assert flake.host_of("nope") is None
    assert flake.without_host("alpha").hosts == ()
    assert hash(flake)  # hosts keep the flake hashable


def test_guest_objects_stand_for_their_names() -> None:
    web = MicroVM(name="web")
    host = Host(name="alpha", vms=[web], networks=[Network.bridged("lan", [web])])  # type: ignore[list-item]
    assert host.vms == (HostVM(name="web"),)
    assert host.networks[0].guests == ("web",)


def test_tap_ids_fit_linux_interface_names() -> None:
    assert tap_id("web") == "vm-web"
    long = tap_id("a-very-long-guest-name")
    assert len(long) <= 15 and long.startswith("vm-a-very")
    assert tap_id("a-very-long-guest-name") != tap_id("a-very-long-guest-nam2")


def test_toml_round_trip_keeps_hosts_and_networks() -> None:
    flake = fleet(
        LAN,
        Network.routed("rt", ["web"], ipv4="10.9.0.0/24", nat=True, default_route=False),
        vms=("web", "db", "cache"),
        nixos_configuration=True,
        target_host="root@alpha.example",
        state_dir="/srv/microvms",
        autostart=["legacy"],
        nixos={"services.openssh.enable": True},
        modules=[PurePosixPath("hardware/alpha.nix")],
    )
    flake = flake.with_host(
        flake.host("alpha").evolve(
            vms=[
                HostVM(name="web", update_flake="git+file:///etc/vms"),
                HostVM(name="db", mode="config", restart_if_changed=False),
                HostVM(name="cache", autostart=False),
            ]
        )
    )
    text = dumps_toml(flake)
    assert '[hosts.alpha.vms.web]\nupdateFlake = "git+file:///etc/vms"' in text
    assert "[hosts.alpha.networks.rt]" in text and "defaultRoute = false" in text
    assert 'targetHost = "root@alpha.example"' in text and "nixosConfiguration = true" in text
    assert loads_flake(text) == flake
    assert loads_flake(dumps_json(flake), format="json") == flake
    assert flake_from_dict(flake_to_dict(flake)) == flake


def test_guests_without_settings_are_a_list_of_names() -> None:
    text = dumps_toml(fleet(LAN))
    assert 'vms = [\n    "web",\n    "db",\n    "cache",\n]' in text
    assert "[hosts.alpha.vms" not in text
    assert loads_flake(text) == fleet(LAN)


def test_every_data_problem_has_its_path() -> None:
    text = """
[guests.web]
[hosts.alpha]
system = "riscv64-linux"
vms = ["web", "web"]
name = "beta"
[hosts.alpha.networks.lan]
type = "bridgee"
guests = "web"
[hosts.alpha.networks.lan.addresses]
web = "10.0.0.2"
[hosts.beta.vms.web]
mode = "inline"
autostrat = true
"""
    with pytest.raises(ValidationError) as caught:
        loads_flake(text)
    found = {p.path: p.message for p in caught.value.problems}
    assert found['hosts["alpha"].system'] == "is not one of the allowed values"
    assert found['hosts["alpha"].vms[1]'] == "is listed twice"
    assert "the name is the table's key" in found['hosts["alpha"].name']
    assert found['hosts["alpha"].networks["lan"].type'] == "is not one of the allowed values"
    assert found['hosts["alpha"].networks["lan"].guests'] == "expected a list"
    assert found['hosts["alpha"].networks["lan"].addresses["web"]'] == "expected a list"
    assert found['hosts["beta"].vms["web"].mode'] == "is not one of the allowed values"
    assert found['hosts["beta"].vms["web"].autostrat'] == "unknown setting"


def test_host_from_dict_reads_one_host() -> None:
    host = host_from_dict("alpha", {"vms": {"web": {"autostart": False}}, "stateDir": "/srv"})
    assert host == Host(name="alpha", vms=[HostVM(name="web", autostart=False)], state_dir="/srv")


# ----------------------------------------------------------------- host rules


def test_host_rules_name_the_guests_involved() -> None:
    flake = Flake(
        guests=[
            MicroVM(name="web"),
            MicroVM(name="arm", system="aarch64-linux"),
            MicroVM(name="mac", hypervisor="vfkit"),
        ],
        hosts=[
            Host(
                name="alpha",
                vms=[
                    HostVM(name="web"),
                    HostVM(name="ghost"),
                    HostVM(name="arm"),
                    HostVM(name="mac"),
                ],
            ),
            Host(
                name="beta",
                vms=[HostVM(name="web", mode="config", update_flake="git+file:///x")],
                state_dir="relative",
                nixos={"microvm.vms.web.flake": Nix("self")},
            ),
        ],
    )
    found = errors(flake)
    assert 'hosts["alpha"].vms["ghost"]: names no guest of this flake' in found
    assert any(
        e.startswith('hosts["alpha"].vms["arm"]: guest \'arm\' is built for aarch64-linux')
        for e in found
    )
    assert any(
        e.startswith('hosts["alpha"].vms["mac"]: guest \'mac\' runs on vfkit') for e in found
    )
    assert any(
        e.startswith("hosts[\"beta\"].vms[\"web\"]: guest 'web' also runs on host 'alpha'")
        for e in found
    )
    assert any(
        e.startswith('hosts["beta"].vms["web"].updateFlake: a guest declared inline') for e in found
    )
    assert 'hosts["beta"].stateDir: must be an absolute path' in found
    assert any(e.startswith('hosts["beta"].nixos["microvm.vms.web.flake"]') for e in found)


def test_host_warnings() -> None:
    flake = Flake(
        guests=guests("web", "db"),
        hosts=[
            Host(
                name="alpha",
                vms=[HostVM(name="web"), HostVM(name="db", autostart=False)],
                autostart=["web", "db", "imperative"],
                target_host="root@alpha",
                modules=[PurePosixPath("hw.nix")],
            )
        ],
    )
    found = warnings(flake)
    assert any(w.startswith("hosts[\"alpha\"].autostart[0]: guest 'web' is in vms") for w in found)
    assert any(
        w.startswith("hosts[\"alpha\"].autostart[1]: guest 'db' has autostart = false")
        for w in found
    )
    assert any(w.startswith('hosts["alpha"].targetHost') for w in found)
    assert any(w.startswith('hosts["alpha"].modules') for w in found)
    assert errors(flake) == []


def test_a_full_host_cannot_share_a_guest_name() -> None:
    flake = Flake(guests=guests("web"), hosts=[Host(name="web", nixos_configuration=True)])
    assert any("nixosConfigurations.web would be both" in e for e in errors(flake))


def test_python_values_of_the_wrong_type_are_reported_like_data() -> None:
    flake = Flake(
        guests=guests("web"),
        hosts=[Host(name="alpha", vms=[HostVM(name="web", autostart="yes")], system="x")],  # type: ignore[arg-type]
    )
    found = errors(flake)
    assert 'hosts["alpha"].vms["web"].autostart: expected true or false' in found
    assert 'hosts["alpha"].system: is not one of the allowed values' in found


# ----------------------------------------------------------------- networks


def test_addresses_follow_the_order_of_guests_and_skip_the_host() -> None:
    plan = plan_networks(fleet(LAN))
    assert plan.problems == ()
    by_guest = {a.guest: a for a in plan.attachments}
    assert [str(a) for a in by_guest["web"].addresses] == ["10.0.0.2/24", "fd00:1::2/64"]
    assert [str(a) for a in by_guest["cache"].addresses] == ["10.0.0.4/24", "fd00:1::4/64"]
    assert [str(a) for a in plan.addresses_of_host("alpha", "lan")] == [
        "10.0.0.1/24",
        "fd00:1::1/64",
    ]
    web = by_guest["web"]
    assert web.id == "vm-web" and web.mac == stable_mac("web", "vm-web")
    assert [str(g) for g in web.gateways] == ["10.0.0.1", "fd00:1::1"]


def test_pinned_addresses_and_ids_are_kept() -> None:
    net = Network(
        name="lan",
        guests=["web", "db", "cache"],
        ipv4="10.0.0.0/24",
        addresses={"web": ["10.0.0.3"]},
        ids={"db": "tap-db"},
    )
    by_guest = {a.guest: a for a in plan_networks(fleet(net)).attachments}
    assert str(by_guest["web"].addresses[0]) == "10.0.0.3/24"
    assert str(by_guest["db"].addresses[0]) == "10.0.0.2/24"  # the next free one
    assert str(by_guest["cache"].addresses[0]) == "10.0.0.4/24"
    assert by_guest["db"].id == "tap-db"


def test_routed_networks_use_host_routes() -> None:
    net = Network.routed("rt", ["web", "db"], ipv4="10.0.0.0/24", ipv6="fd00:2::/64")
    plan = plan_networks(fleet(net, vms=("web", "db")))
    web = plan.of_guest("web")[0]
    assert [str(a) for a in web.addresses] == ["10.0.0.1/32", "fd00:2::1/128"]
    assert [str(a) for a in web.host_addresses] == ["10.0.0.0/24", "fd00:2::/64"]


def test_a_guest_on_two_networks_gets_one_interface_each() -> None:
    wan = Network.routed("wan", ["web"], ipv4="10.9.0.0/24", default_route=False)
    plan = plan_networks(fleet(LAN, wan))
    ids = sorted(a.id for a in plan.of_guest("web"))
    assert ids == ["vm-web-lan", "vm-web-wan"]
    assert plan.problems == ()


def test_two_default_routes_are_a_warning() -> None:
    wan = Network.routed("wan", ["web"], ipv4="10.9.0.0/24")
    found = warnings(fleet(LAN, wan))
    assert any(
        w.startswith(
            'hosts["alpha"].networks["wan"].guests[0]: guest \'web\' also has a default route'
        )
        for w in found
    )


@pytest.mark.parametrize(
    ("network", "path", "message"),
    [
        (
            Network.bridged("lan", ["web", "db"], ipv4="10.0.0.0/30"),
            'hosts["alpha"].networks["lan"].ipv4',
            "range 10.0.0.0/30 has no address left for guest(s) 'db'",
        ),
        (
            Network.bridged(
                "lan",
                ["web", "db"],
                ipv4="10.0.0.0/24",
                addresses={"web": ["10.0.0.7"], "db": ["10.0.0.7"]},
            ),
            'hosts["alpha"].networks["lan"].addresses["db"][0]',
            "guests 'web' and 'db' would share this address",
        ),
        (
            Network.bridged("lan", ["web"], ipv4="10.0.0.0/24", addresses={"web": ["10.0.0.1"]}),
            'hosts["alpha"].networks["lan"].addresses["web"][0]',
            "is the host's, the gateway's, or the network's own address",
        ),
        (
            Network.bridged("lan", ["web"], ipv4="10.0.0.0/24", addresses={"web": ["10.1.0.1"]}),
            'hosts["alpha"].networks["lan"].addresses["web"][0]',
            "is outside the network's range 10.0.0.0/24",
        ),
        (
            Network.bridged("lan", ["web"], ipv4="10.0.0.5/24"),
            'hosts["alpha"].networks["lan"].ipv4',
            "is not an IPv4 range: 10.0.0.5/24 has host bits set",
        ),
        (
            Network.bridged("lan", ["web"], ipv4="fd00::/64"),
            'hosts["alpha"].networks["lan"].ipv4',
            "is an IPv6 range",
        ),
        (
            Network.bridged("lan", ["web"], ids={"web": "vm-a-much-too-long"}),
            'hosts["alpha"].networks["lan"].ids["web"]',
            "the interface id of guest 'web' has 18 characters; Linux interface names have at most 15",
        ),
        (
            Network.bridged("lan", ["web", "db"], ids={"db": "vm-web"}),
            'hosts["alpha"].networks["lan"].ids["db"]',
            "guest 'db' would get the interface name 'vm-web', which is already that of guest 'web' on network 'lan'",
        ),
        (
            Network.bridged("lan", ["web", "ghost"]),
            'hosts["alpha"].networks["lan"].guests[1]',
            "names no guest of this flake",
        ),
        (
            Network.bridged("lan", ["web"], bridge="a-bridge-name-too-long"),
            'hosts["alpha"].networks["lan"].bridge',
            "the bridge name has 22 characters; Linux interface names have at most 15",
        ),
        (
            Network.macvtap_on("lan", "eno1", ["web"], ipv4="192.168.1.0/24"),
            'hosts["alpha"].networks["lan"].gateway',
            "a macvtap network needs the LAN's router as IPv4 gateway",
        ),
        (
            Network(
                name="lan",
                type="macvtap",
                guests=["web"],
                nat=True,
                ipv4="192.168.1.0/24",
                gateway=["192.168.1.1"],
            ),
            'hosts["alpha"].networks["lan"].link',
            "a macvtap network needs the host link its interfaces sit on",
        ),
        (
            Network.routed("rt", ["web"]),
            'hosts["alpha"].networks["rt"].ipv4',
            "a routed network needs an address range: its routes are per address",
        ),
        (
            Network.bridged("lan", ["web"], ipv4="10.0.0.0/24", proxy_arp=True),
            'hosts["alpha"].networks["lan"].proxyArp',
            "proxy ARP is for routed networks",
        ),
        (
            Network.bridged("lan", ["web"], ipv4="10.0.0.0/24", dns=["dns.quad9.net"]),
            'hosts["alpha"].networks["lan"].dns[0]',
            "is not an IP address",
        ),
    ],
)
def test_network_errors(network: Network, path: str, message: str) -> None:
    flake = Flake(
        guests=guests("web", "db"),
        hosts=[Host(name="alpha", vms=[HostVM(name="web"), HostVM(name="db")], networks=[network])],
    )
    assert f"{path}: {message}" in errors(flake)
    with pytest.raises(ValidationError):
        render_files(flake)


def test_a_network_guest_must_run_on_the_host_and_have_the_interface_type() -> None:
    flake = Flake(
        guests=[MicroVM(name="web"), MicroVM(name="fc", hypervisor="firecracker")],
        hosts=[
            Host(
                name="alpha",
                vms=[HostVM(name="fc")],
                networks=[
                    Network.bridged("lan", ["web"], ipv4="10.0.0.0/24"),
                    Network.macvtap_on(
                        "mv", "eno1", ["fc"], gateway=["192.168.1.1"], ipv4="192.168.1.0/24"
                    ),
                ],
            )
        ],
    )
    found = errors(flake)
    assert any(
        e.startswith('hosts["alpha"].networks["lan"].guests[0]: guest \'web\' does not run on host')
        for e in found
    )
    assert any(
        e.startswith(
            'hosts["alpha"].networks["mv"].guests[0]: guest \'fc\' runs on firecracker, which has no macvtap'
        )
        for e in found
    )


def test_overlapping_ranges_and_shared_bridges_on_one_host() -> None:
    other = Network.bridged("dmz", ["db"], ipv4="10.0.0.128/25")
    found = errors(fleet(Network(name="lan", guests=["web"], ipv4="10.0.0.0/24"), other))
    assert any("overlaps the range of network 'lan'" in e for e in found)
    assert any(
        e.startswith('hosts["alpha"].networks["dmz"].bridge: network \'lan\' uses the same bridge')
        for e in found
    )


def test_exhausting_a_small_ipv6_range_names_the_guest() -> None:
    net = Network.bridged("lan", ["web", "db", "cache"], ipv6="fd00::/126")
    assert (
        'hosts["alpha"].networks["lan"].ipv6: range fd00::/126 has no address left for guest(s) \'cache\''
        in errors(fleet(net))
    )


def test_large_ipv6_ranges_are_cheap() -> None:
    net = Network.bridged("lan", ["web", "db", "cache"], ipv6="fd00::/48")
    plan = plan_networks(fleet(net))
    assert [a.addresses[0] for a in plan.attachments][-1] == ipaddress.ip_interface("fd00::4/48")


def test_planning_is_deterministic() -> None:
    assert plan_networks(fleet(LAN)) == plan_networks(fleet(LAN))


# ----------------------------------------------------------------- rendering


def test_guest_side_bridge() -> None:
    text = render_files(
        fleet(Network.bridged("lan", ["web"], ipv4="10.0.0.0/24", dns=["9.9.9.9"]))
    )[PurePosixPath("vms/web.nix")]
    mac = stable_mac("web", "vm-web")
    assert f'id = "vm-web";\n        mac = "{mac}";' in text
    assert "networking.useNetworkd = true;" in text
    assert f'matchConfig.MACAddress = "{mac}";' in text
    assert 'address = [ "10.0.0.2/24" ];' in text
    assert 'gateway = [ "10.0.0.1" ];' in text
    assert 'dns = [ "9.9.9.9" ];' in text
    assert 'networkConfig.DHCP = "no";' in text


def test_guest_side_routed() -> None:
    net = Network.routed("rt", ["web"], ipv4="10.0.0.0/24")
    text = render_files(fleet(net, vms=("web",)))[PurePosixPath("vms/web.nix")]
    assert 'address = [ "10.0.0.1/32" ];' in text
    assert 'Destination = "10.0.0.0/32";\n          GatewayOnLink = true;' in text
    assert 'Destination = "0.0.0.0/0";\n          Gateway = "10.0.0.0";' in text
    assert "gateway =" not in text


def test_guest_side_macvtap() -> None:
    net = Network.macvtap_on("lan", "eno1", ["web"], ipv4="192.168.1.0/24", gateway=["192.168.1.1"])
    text = render_files(fleet(net, vms=("web",)))[PurePosixPath("vms/web.nix")]
    assert 'type = "macvtap";' in text and 'link = "eno1";' in text and 'mode = "bridge";' in text
    assert 'address = [ "192.168.1.2/24" ];' in text and 'gateway = [ "192.168.1.1" ];' in text
    host = render_files(fleet(net, vms=("web",)))[PurePosixPath("hosts/alpha.nix")]
    assert "systemd.network" not in host  # microvm.nix creates macvtap interfaces itself


def test_guest_without_range_uses_dhcp() -> None:
    net = Network.bridged("lan", ["web"], link="eno1")
    text = render_files(fleet(net, vms=("web",)))[PurePosixPath("vms/web.nix")]
    assert 'networkConfig.DHCP = "yes";' in text and "address =" not in text
    host = render_files(fleet(net, vms=("web",)))[PurePosixPath("hosts/alpha.nix")]
    assert 'matchConfig.Name = [ "vm-web" "eno1" ];' in host


def test_guest_user_settings_still_win() -> None:
    flake = fleet(LAN)
    web = flake.guest("web").evolve(nixos={'systemd.network.networks."10-lan".dns': ["1.1.1.1"]})
    text = render_files(flake.with_guest(web))[PurePosixPath("vms/web.nix")]
    assert 'dns = [ "1.1.1.1" ];' in text


def test_host_module_bridge_with_nat() -> None:
    net = Network.bridged(
        "lan",
        ["web", "db"],
        ipv4="10.0.0.0/24",
        ipv6="fd00:1::/64",
        nat=True,
        external_interface="eth0",
    )
    text = render_files(fleet(net, vms=("web", "db")))[PurePosixPath("hosts/alpha.nix")]
    assert text.split("\n")[2:5] == ["{ self }:", "{ ... }:", "{"]
    assert "host.enable = true;" in text
    assert "web = {\n        flake = self;\n        autostart = true;\n      };" in text
    assert (
        'netdevs."10-microvm".netdevConfig = {\n      Kind = "bridge";\n      Name = "microvm";'
        in text
    )
    assert 'address = [ "10.0.0.1/24" "fd00:1::1/64" ];' in text
    assert (
        'matchConfig.Name = [ "vm-web" "vm-db" ];\n        networkConfig.Bridge = "microvm";'
        in text
    )
    assert "IPv4Forwarding = true;" in text and "IPv6Forwarding = true;" in text
    assert (
        "networking.nat = {\n    enable = true;\n    enableIPv6 = true;\n"
        '    internalInterfaces = [ "microvm" ];\n    externalInterface = "eth0";\n  };'
    ) in text


def test_host_module_routed_with_proxy_arp() -> None:
    net = Network.routed("rt", ["web"], ipv4="10.0.0.0/24", nat=True, proxy_arp=True, link="eno1")
    text = render_files(fleet(net, vms=("web",)))[PurePosixPath("hosts/alpha.nix")]
    assert 'networks."20-vm-web" = {\n      matchConfig.Name = "vm-web";' in text
    assert 'address = [ "10.0.0.0/32" ];' in text
    assert 'Destination = "10.0.0.1/32";' in text
    assert 'internalIPs = [ "10.0.0.0/24" ];' in text
    assert 'boot.kernel.sysctl."net.ipv4.conf.eno1.proxy_arp" = 1;' in text


def test_host_module_modes_and_options() -> None:
    flake = Flake(
        guests=guests("web", "db"),
        inputs=[*Flake().inputs, Input(name="extra", url="github:o/r")],
        hosts=[
            Host(
                name="alpha",
                vms=[
                    HostVM(name="web", update_flake="git+file:///etc/vms", restart_if_changed=True),
                    HostVM(name="db", mode="config", autostart=False),
                ],
                autostart=["imperative"],
                state_dir="/srv/microvms",
                nixos={
                    "services.openssh.enable": True,
                    "environment.systemPackages": [Nix("pkgs.htop")],
                },
            )
        ],
    )
    text = render_files(flake)[PurePosixPath("hosts/alpha.nix")]
    assert (
        'web = {\n        flake = self;\n        updateFlake = "git+file:///etc/vms";\n'
        "        autostart = true;\n        restartIfChanged = true;\n      };"
    ) in text
    assert (
        "db = {\n        config = ../vms/db.nix;\n        specialArgs.inputs = self.inputs;\n        autostart = false;"
        in text
    )
    assert 'autostart = [ "imperative" ];' in text and 'stateDir = "/srv/microvms";' in text
    assert "services.openssh.enable = true;" in text
    assert "{\n  config,\n  lib,\n  pkgs,\n  ...\n}:" in text


def test_flake_exposes_modules_and_full_configurations() -> None:
    flake = fleet(LAN, nixos_configuration=True, modules=[PurePosixPath("hardware/alpha.nix")])
    text = render_files(flake)[PurePosixPath("flake.nix")]
    assert "alpha = import ./hosts/alpha.nix { inherit self; };" in text
    assert (
        "        alpha = nixpkgs.lib.nixosSystem {\n"
        '          system = "x86_64-linux";\n'
        "          modules = [\n"
        "            microvm.nixosModules.host\n"
        "            self.nixosModules.alpha\n"
        "            {\n"
        '              networking.hostName = "alpha";\n'
        '              system.stateVersion = "26.05";\n'
        "            }\n"
        "            ./hardware/alpha.nix\n"
        "          ];\n"
        "        };\n"
    ) in text
    only_module = render_files(fleet(LAN))[PurePosixPath("flake.nix")]
    assert "nixosModules = {" in only_module and "self.nixosModules.alpha" not in only_module


def test_flakes_without_hosts_render_as_before() -> None:
    flake = Flake(guests=guests("web"))
    files = render_files(flake)
    assert sorted(map(str, files)) == ["flake.nix", "vms/web.nix"]
    assert "nixosModules = {" not in files[PurePosixPath("flake.nix")]


def test_host_module_alone_plans_its_own_networks() -> None:
    host = fleet(LAN).host("alpha")
    assert 'address = [ "10.0.0.1/24" "fd00:1::1/64" ];' in host_module(host)


def test_stale_host_modules_are_removed(tmp_path: Path) -> None:
    flake = fleet(LAN)
    write_project(flake, tmp_path)
    assert (tmp_path / "hosts/alpha.nix").is_file()
    result = write_project(flake.evolve(hosts=()), tmp_path)
    assert tmp_path / "hosts/alpha.nix" in result.removed


def test_multi_template_uses_a_network() -> None:
    flake = build_template("multi", Choices())
    assert validate(flake) == []
    (host,) = flake.hosts
    assert host.name == "vmhost" and host.guest_names == ("web", "db", "cache")
    files = render_files(flake)
    for name, address in (("web", "10.0.0.2/24"), ("db", "10.0.0.3/24"), ("cache", "10.0.0.4/24")):
        guest = files[PurePosixPath(f"vms/{name}.nix")]
        assert f'address = [ "{address}" ];' in guest
        assert "20-lan" not in guest  # the old hand-made settings are gone
        assert not flake.guest(name).nixos
    prefixed = build_template("multi", Choices(name="a-rather-long-prefix"))
    assert validate(prefixed) == []
    assert all(len(a.id) <= 15 for a in plan_networks(prefixed).attachments)


def test_every_interface_of_the_host_is_unique_with_the_guests_own() -> None:
    flake = fleet(LAN).with_guest(MicroVM(name="web", interfaces=[Interface.tap_device("vm-db")]))
    assert any(
        "'vm-db', which is already that of guest 'web' (interfaces[0])" in e for e in errors(flake)
    )


def test_one_external_interface_per_host() -> None:
    lan = Network.bridged("lan", ["web"], ipv4="10.0.0.0/24", nat=True, external_interface="a")
    dmz = Network.bridged(
        "dmz", ["db"], ipv4="10.1.0.0/24", bridge="br1", nat=True, external_interface="b"
    )
    found = errors(fleet(lan, dmz))
    assert found == [
        'hosts["alpha"].networks["dmz"].externalInterface: another network of this host '
        "masquerades out of 'a'; NixOS's networking.nat has one external interface"
    ]
    text = render_files(fleet(lan, dmz.evolve(external_interface="a")))[
        PurePosixPath("hosts/alpha.nix")
    ]
    assert 'internalInterfaces = [ "microvm" "br1" ];' in text


# ----------------------------------------------------------------- removing and renaming guests


def pinned_fleet() -> Flake:
    """Two hosts; db has a pinned address and interface id, and beta autostarts it too."""
    lan = Network.bridged(
        "lan",
        ["web", "db"],
        ipv4="10.0.0.0/24",
        addresses={"db": ["10.0.0.20"]},
        ids={"db": "tap-db"},
    )
    edge = Network.bridged("lan", ["cache"], ipv4="10.0.0.0/24", addresses={"cache": ["10.0.0.30"]})
    return Flake(
        guests=[*guests("web", "cache"), MicroVM(name="db", interfaces=[Interface.user()])],
        hosts=[
            Host(name="alpha", vms=[HostVM(name="web"), HostVM(name="db")], networks=[lan]),
            Host(name="beta", vms=[HostVM(name="cache")], autostart=["db"], networks=[edge]),
        ],
        default="db",
    )


def test_without_guest_takes_it_out_of_every_host() -> None:
    flake = pinned_fleet()
    assert errors(flake) == []
    smaller = flake.without_guest("db")
    assert [g.name for g in smaller.guests] == ["web", "cache"]
    alpha, beta = smaller.hosts
    assert alpha.guest_names == ("web",) and beta.autostart == ()
    assert alpha.network("lan").guests == ("web",)
    assert dict(alpha.network("lan").addresses) == {}
    assert dict(alpha.network("lan").ids) == {}
    assert beta == flake.host("beta").evolve(autostart=())
    assert smaller.default is None
    assert errors(smaller) == []
    # what is left keeps its addresses (web came first; cache is pinned)
    before = {(a.host, a.guest): a.addresses for a in plan_networks(flake).attachments}
    after = {(a.host, a.guest): a.addresses for a in plan_networks(smaller).attachments}
    assert after == {k: v for k, v in before.items() if k[1] != "db"}
    with pytest.raises(KeyError, match="no guest 'db'"):
        smaller.without_guest("db")


def test_without_guest_moves_the_addresses_after_it_unless_pinned() -> None:
    flake = fleet(LAN)
    smaller = flake.without_guest("web")
    plan = {a.guest: str(a.address(4)) for a in plan_networks(smaller).attachments}
    assert plan == {"db": "10.0.0.2/24", "cache": "10.0.0.3/24"}  # documented: they move


def test_rename_guest_follows_it_everywhere() -> None:
    flake = pinned_fleet()
    renamed = flake.rename_guest("db", "database")
    assert [g.name for g in renamed.guests] == ["web", "cache", "database"]
    alpha, beta = renamed.hosts
    assert alpha.guest_names == ("web", "database") and beta.autostart == ("database",)
    lan = alpha.network("lan")
    assert lan.guests == ("web", "database")
    assert dict(lan.addresses) == {"database": ("10.0.0.20",)}
    assert dict(lan.ids) == {"database": "tap-db"}
    assert renamed.default == "database"
    # its own interface keeps its MAC: the derived one is pinned
    old_mac = flake.guest("db").resolved_interfaces()[0].mac
    assert renamed.guest("database").interfaces[0].mac == old_mac != stable_mac("database", "eth0")
    assert errors(renamed) == []
    # the network interface keeps its (pinned) name and address; its MAC is derived anew
    (attachment,) = plan_networks(renamed).of_guest("database")
    (before,) = plan_networks(flake).of_guest("db")
    assert (attachment.id, attachment.addresses) == (before.id, before.addresses)
    assert attachment.mac == stable_mac("database", "tap-db")
    # unpinned, the interface is named after the guest
    plain = fleet(LAN).rename_guest("web", "www")
    assert [a.id for a in plan_networks(plain).of_guest("www")] == [tap_id("www")]
    assert plain.rename_guest("www", "www") == plain
    with pytest.raises(KeyError, match="no guest 'nope'"):
        flake.rename_guest("nope", "x")
    with pytest.raises(ValueError, match="already a guest 'web'"):
        flake.rename_guest("db", "web")
