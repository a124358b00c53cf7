"""The host side with the real ``nix``: host configurations and networks evaluate and build.

The inputs are the stand-ins of ``tests/standins``: the microvm stand-in's
``nixosModules.host`` declares the host options strictly (upstream's names,
types and defaults) and asserts what upstream asserts, and building a host's
toplevel builds every guest's runner, so a wrong option, a wrong type or a
guest that does not evaluate fails here.  Few nix calls, shared by the tests.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nixgen import Flake, Host, HostVM, MicroVM, Network, Share, plan_networks, validate
from nixgen.render import write_project
from tests.standin import (
    NIX_SKIP_REASON,
    nix_available,
    offline_nix_env,
    override_args,
    prepare_inputs,
)

pytestmark = [
    pytest.mark.nix,
    pytest.mark.skipif(not nix_available(), reason=NIX_SKIP_REASON),
]

Setup = tuple[dict[str, str], list[str]]


def fleet() -> Flake:
    """One host with every network type and both ways of declaring a guest."""
    store = [Share.ro_store()]
    return Flake(
        guests=[
            MicroVM(name="web", shares=store),
            MicroVM(name="db", hypervisor="cloud-hypervisor", shares=[Share.ro_store("virtiofs")]),
            MicroVM(name="cache", shares=store),
            MicroVM(name="edge", hypervisor="crosvm", shares=store),
        ],
        hosts=[
            Host(
                name="alpha",
                nixos_configuration=True,
                vms=[
                    HostVM(name="web", update_flake="git+file:///etc/vms"),
                    HostVM(name="db", mode="config"),
                    HostVM(name="cache", autostart=False, restart_if_changed=True),
                    HostVM(name="edge"),
                ],
                autostart=["imperative"],
                networks=[
                    Network.bridged(
                        "lan",
                        ["web", "db"],
                        ipv4="10.0.0.0/24",
                        ipv6="fd00:1::/64",
                        nat=True,
                        external_interface="eth0",
                        dns=["9.9.9.9"],
                    ),
                    Network.routed(
                        "rt", ["cache"], ipv4="10.1.0.0/24", nat=True, proxy_arp=True, link="eno1"
                    ),
                    Network.macvtap_on(
                        "mv", "eno1", ["edge"], ipv4="192.168.1.0/24", gateway=["192.168.1.1"]
                    ),
                ],
            )
        ],
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    base = tmp_path_factory.mktemp("nix")
    inputs = prepare_inputs(base / "inputs")
    return offline_nix_env(base), override_args(inputs)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fleet")
    flake = fleet()
    assert [w for w in validate(flake) if "default route" not in w.message] == []
    write_project(flake, folder)
    return folder


def nix(args: list[str], setup: Setup, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    env, overrides = setup
    proc = subprocess.run(
        ["nix", *args, *overrides],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_host_toplevel_builds_every_guest(project: Path, setup: Setup) -> None:
    toplevel = f"path:{project}#nixosConfigurations.alpha.config.system.build.toplevel"
    built = json.loads(nix(["build", "--json", "--no-link", toplevel], setup).stdout)
    (system,) = [Path(b["outputs"]["out"]) for b in built]
    assert (system / "etc/hostname").read_text() == "alpha\n"
    # the stand-in's microvm-host package: what install-microvm-<name> leaves behind
    state = (system / "sw/bin/microvm").resolve().parent.parent / "share/microvm-host"
    for name in ("web", "db", "cache", "edge"):
        runner = state / name / "current"
        assert (runner / "bin/microvm-run").is_file(), name
    assert (state / "web/flake").read_text() == "git+file:///etc/vms\n"
    assert (state / "cache/flake").read_text().startswith("/nix/store/")  # flake = self
    assert (state / "db/toplevel/etc/hostname").read_text() == "db\n"  # built by the host
    assert not (state / "db/flake").exists()


def test_both_sides_reach_the_evaluated_configurations(project: Path, setup: Setup) -> None:
    apply = """cs: let
      host = cs.alpha.config;
      net = cs.web.config.systemd.network.networks."10-lan";
      svc = name: host.systemd.services."microvm@${name}".serviceConfig.X-RestartIfChanged;
    in {
      autostart = host.microvm.autostart;
      wants = host.systemd.targets.microvms.wants;
      restart = map svc [ "web" "db" "cache" ];
      stateDir = host.microvm.stateDir;
      hostNetworks = builtins.attrNames host.systemd.network.networks;
      bridge = host.systemd.network.networks."10-microvm".address;
      taps = host.systemd.network.networks."11-microvm".matchConfig.Name;
      routed = host.systemd.network.networks."20-vm-cache".routes;
      nat = host.networking.nat;
      sysctl = host.boot.kernel.sysctl;
      webInterfaces = map (i: [ i.type i.id i.mac ]) cs.web.config.microvm.interfaces;
      edgeInterface = map (i: [ i.type i.macvtap.link ]) cs.edge.config.microvm.interfaces;
      web = { inherit (net) address gateway dns; mac = net.matchConfig.MACAddress; };
      cacheRoutes = cs.cache.config.systemd.network.networks."10-rt".routes;
      inlineDb = host.microvm.vms.db.config.config.systemd.network.networks."10-lan".address;
    }"""
    got: dict[str, Any] = json.loads(
        nix(
            ["eval", "--json", f"path:{project}#nixosConfigurations", "--apply", apply], setup
        ).stdout
    )
    plan = plan_networks(fleet())
    web = plan.of_guest("web")[0]
    assert sorted(got["autostart"]) == ["db", "edge", "imperative", "web"]
    assert "microvm@cache.service" not in got["wants"]
    assert got["restart"] == [["", False], ["", True], ["", True]]  # config guests restart
    assert got["stateDir"] == "/var/lib/microvms"
    assert got["hostNetworks"] == ["10-microvm", "11-microvm", "20-vm-cache"]
    assert got["bridge"] == ["10.0.0.1/24", "fd00:1::1/64"]
    assert got["taps"] == ["vm-web", "vm-db"]
    assert got["routed"] == [{"Destination": "10.1.0.1/32"}]
    assert got["nat"] == {
        "enable": True,
        "enableIPv6": True,
        "externalInterface": "eth0",
        "internalIPs": ["10.1.0.0/24"],
        "internalInterfaces": ["microvm"],
    }
    assert got["sysctl"] == {"net.ipv4.conf.eno1.proxy_arp": 1}
    assert got["webInterfaces"] == [["tap", "vm-web", web.mac]]
    assert got["edgeInterface"] == [["macvtap", "eno1"]]
    assert got["web"] == {
        "address": ["10.0.0.2/24", "fd00:1::2/64"],
        "gateway": ["10.0.0.1", "fd00:1::1"],
        "dns": ["9.9.9.9"],
        "mac": web.mac,
    }
    assert got["cacheRoutes"] == [
        {"Destination": "10.1.0.0/32", "GatewayOnLink": True},
        {"Destination": "0.0.0.0/0", "Gateway": "10.1.0.0", "GatewayOnLink": True},
    ]
    assert got["inlineDb"] == ["10.0.0.3/24", "fd00:1::3/64"]


FLAKE = """{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";
  inputs.microvm.inputs.nixpkgs.follows = "nixpkgs";
  outputs = { self, nixpkgs, microvm }: {
    nixosConfigurations.web = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [ microvm.nixosModules.microvm { networking.hostName = "web"; } ];
    };
    nixosConfigurations.both = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [
        microvm.nixosModules.host
        { microvm.vms.web = { flake = self; config = { networking.hostName = "web"; }; }; }
      ];
    };
    nixosConfigurations.misspelt = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [ microvm.nixosModules.host { microvm.vms.web.autoStart = false; } ];
    };
  };
}
"""


def test_the_standin_host_module_is_strict(tmp_path: Path, setup: Setup) -> None:
    """Guards the guard: upstream's assertion, and unknown host options, fail."""
    (tmp_path / "flake.nix").write_text(FLAKE)
    both = nix(
        ["eval", "--raw", f"path:{tmp_path}#nixosConfigurations.both.config.system.build.toplevel"],
        setup,
        check=False,
    )
    assert both.returncode != 0
    assert "Failed assertions" in both.stderr
    assert "cannot also set `flake'" in both.stderr
    misspelt = nix(
        ["eval", "--json", f"path:{tmp_path}#nixosConfigurations.misspelt.config.microvm.vms.web"],
        setup,
        check=False,
    )
    assert misspelt.returncode != 0
    assert "autoStart' does not exist" in misspelt.stderr
