"""The guest model: helpers, stable MACs, derived values, flakes, immutability, repr."""

from __future__ import annotations

import pickle
import re
from pathlib import Path, PurePosixPath
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nixgen.errors import ValidationError
from nixgen.model import (
    DEFAULT_INPUTS,
    Flake,
    ForwardPort,
    FrozenDict,
    Graphics,
    Input,
    Interface,
    MacvtapOptions,
    MicroVM,
    Nix,
    PortEnd,
    QemuOptions,
    Share,
    TapOptions,
    User,
    Volume,
    Vsock,
    stable_mac,
)
from nixgen.model.fields import camel, is_always, option_name

MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")

names = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20
)


# ----------------------------------------------------------------- field metadata


def test_camel() -> None:
    assert camel("mount_point") == "mountPoint"
    assert camel("mkfs_extra_args") == "mkfsExtraArgs"
    assert camel("mem") == "mem"


def test_option_names_from_metadata() -> None:
    fields = attrs.fields_dict(MicroVM)
    assert option_name(fields["deflate_on_oom"]) == "deflateOnOOM"
    assert option_name(fields["cloud_hypervisor"]) == "cloud-hypervisor"
    assert option_name(fields["hotplug_mem"]) == "hotplugMem"
    assert option_name(attrs.fields_dict(ForwardPort)["from_"]) == "from"
    assert is_always(fields["hypervisor"]) and is_always(fields["mem"])
    assert not is_always(fields["balloon"])


# ----------------------------------------------------------------- helpers


def test_interface_user() -> None:
    iface = Interface.user()
    assert iface == Interface(type="user", id="eth0")
    assert iface.mac is None and iface.bridge is None and iface.macvtap is None
    assert Interface.user(id="u1", mac="02:00:00:00:00:01").mac == "02:00:00:00:00:01"


def test_interface_tap_device() -> None:
    plain = Interface.tap_device("vm-a")
    assert (plain.type, plain.id, plain.tap) == ("tap", "vm-a", None)
    vhost = Interface.tap_device("vm-b", mac="02:00:00:00:00:02", vhost=True)
    assert vhost.tap == TapOptions(vhost=True)
    assert vhost.mac == "02:00:00:00:00:02"


def test_interface_macvtap_on() -> None:
    iface = Interface.macvtap_on("mv0", "enp1s0")
    assert iface.type == "macvtap"
    assert iface.macvtap == MacvtapOptions(link="enp1s0", mode="bridge")
    assert Interface.macvtap_on("mv1", "eth0", mode="vepa").macvtap == MacvtapOptions(
        link="eth0", mode="vepa"
    )
    assert iface.bridge is None


def test_interface_on_bridge() -> None:
    iface = Interface.on_bridge("br-vm", "br0", mac="02:aa:bb:cc:dd:ee")
    assert (iface.type, iface.id, iface.bridge, iface.mac) == (
        "bridge",
        "br-vm",
        "br0",
        "02:aa:bb:cc:dd:ee",
    )
    assert iface.macvtap is None and iface.tap is None


def test_share_ro_store() -> None:
    share = Share.ro_store()
    assert share.tag == "ro-store"
    assert share.source == "/nix/store"
    assert share.mount_point == "/nix/.ro-store"
    assert share.proto == "9p"
    assert Share.ro_store("virtiofs").proto == "virtiofs"


def test_share_virtiofs() -> None:
    share = Share.virtiofs("home", "/home", "/mnt/home", read_only=True)
    assert (share.tag, share.source, share.mount_point) == ("home", "/home", "/mnt/home")
    assert share.proto == "virtiofs" and share.read_only
    assert not Share.virtiofs("a", "/a", "/a").read_only


def test_forward_port_tcp() -> None:
    fwd = ForwardPort.tcp(2222, 22)
    assert fwd.host == PortEnd(port=2222) and fwd.guest == PortEnd(port=22)
    assert fwd.proto == "tcp" and fwd.from_ == "host"
    assert fwd.host.address == ""


def test_defaults_of_a_guest() -> None:
    vm = MicroVM(name="a")
    assert (vm.hypervisor, vm.vcpu, vm.mem, vm.system) == ("qemu", 1, 512, "x86_64-linux")
    assert vm.interfaces == () and vm.shares == () and vm.volumes == ()
    assert vm.vsock is None and vm.graphics is None and vm.qemu is None
    assert vm.extra == {} and vm.nixos == {} and vm.credential_files == {}


def test_lists_become_tuples() -> None:
    # Lists are what people write; typed as Any so the test reads the same whether
    # or not the annotations accept lists.
    interfaces: Any = [Interface.user()]
    kernel_params: Any = ["quiet"]
    packages: Any = ["htop", Nix("pkgs.hello")]
    vm = MicroVM(name="a", interfaces=interfaces, kernel_params=kernel_params, packages=packages)
    assert isinstance(vm.interfaces, tuple)
    assert vm.kernel_params == ("quiet",)
    assert vm.packages == ("htop", Nix("pkgs.hello"))


def test_module_strings_are_paths() -> None:
    modules: Any = ["modules/web.nix", PurePosixPath("/etc/x.nix"), Nix("{ }")]
    vm = MicroVM(name="a", modules=modules)
    assert vm.modules == (PurePosixPath("modules/web.nix"), PurePosixPath("/etc/x.nix"), Nix("{ }"))


def test_nix_needs_text() -> None:
    assert Nix("pkgs.hello").text == "pkgs.hello"
    with pytest.raises(ValidationError, match="empty Nix expression"):
        Nix("  ")
    with pytest.raises(ValidationError, match="as a string, got int"):
        Nix(3)  # type: ignore[arg-type]


# ----------------------------------------------------------------- stable MACs


def _octets(mac: str) -> list[int]:
    return [int(part, 16) for part in mac.split(":")]


@settings(max_examples=60)
@given(guest=names, interface_id=names)
def test_stable_mac_is_deterministic_local_unicast(guest: str, interface_id: str) -> None:
    mac = stable_mac(guest, interface_id)
    assert MAC.match(mac), mac
    assert stable_mac(guest, interface_id) == mac
    first = _octets(mac)[0]
    assert first & 0b01 == 0, "unicast: the lowest bit of the first octet is clear"
    assert first & 0b10 == 0b10, "locally administered: the second bit is set"


@settings(max_examples=60)
@given(a=names, b=names, interface_id=names)
def test_stable_mac_differs_per_guest(a: str, b: str, interface_id: str) -> None:
    if a != b:
        assert stable_mac(a, interface_id) != stable_mac(b, interface_id)


@settings(max_examples=60)
@given(guest=names, a=names, b=names)
def test_stable_mac_differs_per_interface(guest: str, a: str, b: str) -> None:
    if a != b:
        assert stable_mac(guest, a) != stable_mac(guest, b)


def test_stable_mac_is_pinned() -> None:
    """A re-render, or a new nixgen version, must never change a guest's MAC."""
    assert stable_mac("web", "eth0") == "b6:ae:49:a7:2f:12"
    assert stable_mac("my-microvm", "vm-my-microvm") == "2a:c9:b2:9b:c3:a0"


def test_resolved_interfaces_fill_missing_macs_and_keep_given_ones() -> None:
    given_mac = "02:12:34:56:78:9a"
    vm = MicroVM(
        name="web",
        interfaces=(Interface.user(), Interface.tap_device("vm-web", mac=given_mac)),
    )
    resolved = vm.resolved_interfaces()
    assert resolved[0].mac == stable_mac("web", "eth0")
    assert resolved[1].mac == given_mac
    assert resolved[1] == vm.interfaces[1]
    # everything else is left alone, and the guest itself is unchanged
    assert [attrs.evolve(i, mac=None) for i in resolved] == [
        attrs.evolve(i, mac=None) for i in vm.interfaces
    ]
    assert vm.interfaces[0].mac is None
    assert MicroVM(name="x").resolved_interfaces() == ()


@settings(max_examples=30)
@given(guest=names, ids=st.lists(names, min_size=1, max_size=5, unique=True))
def test_resolved_macs_are_distinct_within_a_guest(guest: str, ids: list[str]) -> None:
    vm = MicroVM(name=guest, interfaces=tuple(Interface.tap_device(i) for i in ids))
    macs = [i.mac for i in vm.resolved_interfaces()]
    assert len(set(macs)) == len(macs)
    assert macs == [i.mac for i in vm.resolved_interfaces()]


# ----------------------------------------------------------------- derived values


def test_effective_store_on_disk() -> None:
    assert MicroVM(name="a").effective_store_on_disk() is True
    assert MicroVM(name="a", shares=(Share.ro_store(),)).effective_store_on_disk() is False
    assert (
        MicroVM(name="a", shares=(Share.virtiofs("d", "/srv", "/srv"),)).effective_store_on_disk()
        is True
    )
    # an explicit setting wins either way
    assert (
        MicroVM(name="a", shares=(Share.ro_store(),), store_on_disk=True).effective_store_on_disk()
        is True
    )
    assert MicroVM(name="a", store_on_disk=False).effective_store_on_disk() is False


def test_ssh_enabled() -> None:
    assert MicroVM(name="a").ssh_enabled is False
    assert MicroVM(name="a", users=(User(name="root"),)).ssh_enabled is False
    keyed = (User(name="root", ssh_keys=("ssh-ed25519 AAAA me",)),)
    assert MicroVM(name="a", users=keyed).ssh_enabled is True
    assert MicroVM(name="a", users=keyed, ssh=False).ssh_enabled is False
    assert MicroVM(name="a", ssh=True).ssh_enabled is True


def test_evolve_returns_a_changed_copy() -> None:
    vm = MicroVM(name="a")
    bigger = vm.evolve(mem=1024)
    assert bigger.mem == 1024 and vm.mem == 512
    assert bigger.name == "a"
    with pytest.raises(TypeError):
        vm.evolve(no_such_field=1)


# ----------------------------------------------------------------- flakes


def _flake(*guest_names: str, **kwargs: Any) -> Flake:
    return Flake(guests=tuple(MicroVM(name=n, **kwargs) for n in guest_names))


def test_flake_defaults() -> None:
    flake = Flake()
    assert flake.guests == ()
    assert flake.inputs == DEFAULT_INPUTS
    assert flake.input("nixpkgs") == DEFAULT_INPUTS[0]
    microvm = flake.input("microvm")
    assert microvm is not None and microvm.follows == {"nixpkgs": "nixpkgs"}
    assert flake.input("nope") is None
    assert flake.binary_cache and flake.default is None


def test_flake_guest_lookup() -> None:
    flake = _flake("web", "db")
    assert flake.guest("db").name == "db"
    with pytest.raises(KeyError, match="web, db"):
        flake.guest("cache")
    with pytest.raises(KeyError, match="none"):
        Flake().guest("x")


def test_flake_with_guest_adds_at_the_end() -> None:
    flake = _flake("web")
    added = flake.with_guest(MicroVM(name="db"))
    assert [g.name for g in added.guests] == ["web", "db"]
    assert [g.name for g in flake.guests] == ["web"], "the original is unchanged"


def test_flake_with_guest_replaces_in_place() -> None:
    flake = _flake("web", "db", "cache")
    replaced = flake.with_guest(MicroVM(name="db", mem=2047))
    assert [g.name for g in replaced.guests] == ["web", "db", "cache"]
    assert replaced.guest("db").mem == 2047
    assert flake.guest("db").mem == 512


def test_flake_without_guest() -> None:
    flake = _flake("web", "db")
    assert [g.name for g in flake.without_guest("web").guests] == ["db"]
    with pytest.raises(KeyError, match="no guest 'nope'"):
        flake.without_guest("nope")
    assert len(flake.guests) == 2


def test_flake_systems_in_first_seen_order() -> None:
    flake = Flake(
        guests=(
            MicroVM(name="a", system="aarch64-linux"),
            MicroVM(name="b"),
            MicroVM(name="c", system="aarch64-linux"),
        )
    )
    assert flake.systems == ("aarch64-linux", "x86_64-linux")
    assert Flake().systems == ()
    assert _flake("x", "y").systems == ("x86_64-linux",)


def test_flake_guests_from_any_iterable() -> None:
    guests: Any = (MicroVM(name=n) for n in ("a", "b"))
    flake = Flake(guests=guests)
    assert isinstance(flake.guests, tuple) and len(flake.guests) == 2
    assert flake.evolve(default="b").default == "b"


# ----------------------------------------------------------------- immutability


FROZEN_EXAMPLES: list[tuple[Any, str, Any]] = [
    (MicroVM(name="a"), "mem", 1024),
    (MicroVM(name="a"), "name", "b"),
    (Interface.user(), "id", "eth1"),
    (Share.ro_store(), "read_only", True),
    (Volume(image="v.img", mount_point="/var", size=1), "size", 2),
    (ForwardPort.tcp(1, 2), "proto", "udp"),
    (PortEnd(port=1), "port", 2),
    (Vsock(cid=3), "cid", 4),
    (Graphics(enable=True), "enable", False),
    (QemuOptions(), "machine", "q35"),
    (MacvtapOptions(link="eth0"), "link", "eth1"),
    (User(name="root"), "name", "alice"),
    (Input(name="x", url="github:a/b"), "url", "github:c/d"),
    (Flake(), "default", "a"),
    (Nix("pkgs.hello"), "text", "pkgs.htop"),
]


@pytest.mark.parametrize(
    ("obj", "field", "value"), FROZEN_EXAMPLES, ids=[type(e[0]).__name__ for e in FROZEN_EXAMPLES]
)
def test_frozen_assignment_raises(obj: Any, field: str, value: Any) -> None:
    before = getattr(obj, field)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(obj, field, value)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        delattr(obj, field)
    assert getattr(obj, field) == before


def test_list_fields_cannot_be_appended_to() -> None:
    vm = MicroVM(name="a", interfaces=(Interface.user(),))
    with pytest.raises(AttributeError):
        vm.interfaces.append(Interface.user("eth1"))  # type: ignore[attr-defined]


def test_guest_does_not_share_the_callers_mappings() -> None:
    nixos: dict[str, Any] = {"services.nginx.enable": True}
    vm = MicroVM(name="a", nixos=nixos)
    nixos["services.nginx.enable"] = False
    assert vm.nixos == {"services.nginx.enable": True}


def test_value_equality() -> None:
    as_list: Any = [Interface.user()]
    assert MicroVM(name="a", interfaces=as_list) == MicroVM(
        name="a", interfaces=(Interface.user(),)
    )
    assert MicroVM(name="a") != MicroVM(name="b")
    assert Flake(guests=(MicroVM(name="a"),)) == Flake(guests=(MicroVM(name="a"),))


def test_guests_are_hashable_values() -> None:
    vm = MicroVM(name="a")
    assert hash(vm) == hash(MicroVM(name="a"))
    assert len({vm, MicroVM(name="a")}) == 1


def test_mapping_fields_are_frozen_all_the_way_down() -> None:
    nested: dict[str, Any] = {"a": [1, {"b": 2}]}
    vm = MicroVM(name="a", nixos={"x": nested}, credential_files={"t": "/run/t"})
    nested["a"].append(3)
    assert vm.nixos == {"x": {"a": (1, {"b": 2})}}  # lists become tuples, as list fields do
    assert isinstance(vm.nixos, FrozenDict) and isinstance(vm.nixos["x"]["a"][1], FrozenDict)
    with pytest.raises(TypeError):
        vm.nixos["y"] = 1  # type: ignore[index]
    with pytest.raises(AttributeError):
        vm.credential_files.clear()  # type: ignore[attr-defined]
    same = MicroVM(name="a", nixos={"x": {"a": [1, {"b": 2}]}}, credential_files={"t": "/run/t"})
    assert vm == same and hash(vm) == hash(same)
    assert hash(QemuOptions(machine_opts={"a": "b"})) == hash(QemuOptions(machine_opts={"a": "b"}))
    assert hash(Input(name="x", url="y", follows={"nixpkgs": "nixpkgs"})) is not None


def test_frozen_dict_reads_like_a_dict() -> None:
    frozen = FrozenDict({"b": 1, "a": 2})
    plain = {"a": 2, "b": 1}
    assert frozen == plain and plain == frozen  # both directions
    assert frozen == FrozenDict([("a", 2), ("b", 1)])
    assert hash(frozen) == hash(FrozenDict({"a": 2, "b": 1}))
    assert list(frozen) == ["b", "a"] and frozen["a"] == 2 and frozen.get("c") is None
    assert dict(frozen) == {"b": 1, "a": 2} and "a" in frozen and len(frozen) == 2
    assert repr(frozen) == "FrozenDict({'b': 1, 'a': 2})"
    assert pickle.loads(pickle.dumps(frozen)) == frozen
    assert frozen != [("a", 2), ("b", 1)]
    # Its views read in order, compare as a dict's do, and change nothing.
    assert list(frozen.items()) == [("b", 1), ("a", 2)] and frozen.items() == plain.items()
    assert list(frozen.keys()) == ["b", "a"] and list(frozen.values()) == [1, 2]
    assert not hasattr(frozen.items(), "__setitem__") and frozen == plain


# ----------------------------------------------------------------- repr


def _repr_by_attrs(obj: Any) -> str:
    """``repr(obj)`` as attrs writes it for a class of its own making (a twin of
    ``obj``'s class with the same name, fields and values)."""
    cls = type(obj)
    fields = attrs.fields(cls)
    twin = attrs.make_class(cls.__name__, {f.name: attrs.field(repr=f.repr) for f in fields})
    return repr(twin(*(getattr(obj, f.name) for f in fields)))


def _model_objects(root: object) -> dict[type, list[object]]:
    """Every model object inside ``root``, by class."""
    found: dict[type, list[object]] = {}
    stack = [root]
    while stack:
        value = stack.pop()
        cls: Any = type(value)
        if attrs.has(cls):
            found.setdefault(cls, []).append(value)
            stack.extend(getattr(value, f.name) for f in attrs.fields(cls))
        elif isinstance(value, tuple | list):
            stack.extend(value)
        elif isinstance(value, FrozenDict):
            stack.extend(value.values())
    return found


def test_the_model_shows_itself_as_attrs_would(tmp_path: Path) -> None:
    from nixgen import model
    from nixgen._repr import attrs_repr
    from nixgen.model.guest import PcieRootPort
    from tests.fleet import make_fleet

    vm = MicroVM(
        name="all",
        interfaces=[
            Interface.tap_device("vm-all"),
            Interface.macvtap_on("mv-all", "eth0"),
            Interface(type="tap", id="t-all", tap=TapOptions(vhost=True)),
        ],
        volumes=[Volume(image="var.img", size=16, mount_point="/var")],
        shares=[Share.ro_store()],
        forward_ports=[ForwardPort.tcp(2222, 22)],
        vsock=Vsock(cid=5),
        graphics=Graphics(enable=True),
        qemu=QemuOptions(machine_opts={"a": "b"}, pcie_root_ports=[PcieRootPort(id="p1")]),
        cloud_hypervisor=model.CloudHypervisorOptions(extra_args=["--x"]),
        firecracker=model.FirecrackerOptions(cpu={"template": "T2"}),
        crosvm=model.CrosvmOptions(pivot_root="/var/empty"),
        vfkit=model.VfkitOptions(rosetta=model.RosettaOptions(enable=True)),
        virtiofsd=model.VirtiofsdOptions(thread_pool_size=4),
        devices=[
            model.Device(bus="pci", path="0000:00:01.0", qemu=model.QemuDeviceOptions(id="d"))
        ],
        users=[User(name="root", ssh_keys=["ssh-ed25519 AAAA k"])],
        modules=[PurePosixPath("extra.nix"), Nix("{ }")],
        extra={"x": [1, {"y": Nix("z")}]},
    )
    fleet = make_fleet(hosts=2, per_host=3)
    found = _model_objects(fleet.evolve(guests=[*fleet.guests, vm]))
    shown_by_nixgen = {
        cls
        for name in model.__all__
        if isinstance(cls := getattr(model, name), type) and vars(cls).get("__repr__") is attrs_repr
    }
    assert shown_by_nixgen <= set(found), "an object of every class is shown"
    assert len(shown_by_nixgen) > 20
    for cls in shown_by_nixgen:
        for obj in found[cls][:3]:
            assert repr(obj) == _repr_by_attrs(obj)
    # the classes beside the model that show themselves the same way
    from nixgen.hypervisors import TABLE
    from nixgen.model.fields import describe
    from nixgen.runtime import Runtime
    from nixgen.schema import Issue, packaged_schema

    others = [
        TABLE["qemu"],
        describe(MicroVM)[0],
        Issue("microvm.x is unknown", "use microvm.y"),
        packaged_schema().lookup("guest", ["vcpu"]),
        packaged_schema().lookup("guest", ["vcpus"]),
        Runtime(None, state_root=tmp_path),
        Runtime(None, state_root=tmp_path).guest("web"),  # (a field not shown: _prestart)
        Runtime(None, state_root=tmp_path).guest("web").state,
    ]
    for obj in others:
        assert vars(type(obj)).get("__repr__") is attrs_repr
        assert repr(obj) == _repr_by_attrs(obj)
    # an object inside itself (through a field that keeps what it is given) is "..."
    looped: list[object] = []
    interface = Interface(type="user", id="eth0", mac=looped)  # type: ignore[arg-type]
    looped.append(interface)
    assert repr(interface) == (
        "Interface(type='user', id='eth0', mac=[...], bridge=None, macvtap=None, tap=None)"
    )
