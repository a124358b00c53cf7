"""The validator: one test per rule, each naming the path, the severity and the fix."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any, get_args

import pytest

from nixgen.errors import Problem, ValidationError
from nixgen.hypervisors import TABLE
from nixgen.model import (
    DEFAULT_INPUTS,
    HYPERVISORS,
    CloudHypervisorOptions,
    CrosvmOptions,
    Device,
    FirecrackerOptions,
    Flake,
    ForwardPort,
    Graphics,
    Host,
    Hypervisor,
    Input,
    Interface,
    MacvtapOptions,
    MicroVM,
    Nix,
    PortEnd,
    QemuOptions,
    Share,
    User,
    VfkitOptions,
    VirtiofsdOptions,
    Volume,
    Vsock,
    stable_mac,
)
from nixgen.model.devices import DeviceBus, ImageType, InterfaceType, ShareProto
from nixgen.starters import Choices, single_guest
from nixgen.validate import check, validate

G = 'guests["vm"]'

Target = Flake | MicroVM | Iterable[MicroVM]


def vm(**kwargs: Any) -> MicroVM:
    """A guest called ``vm`` with the given settings."""
    return MicroVM(name="vm", **kwargs)


def at(target: Target, path: str) -> list[Problem]:
    return [p for p in check(target) if p.path == path]


def error_at(target: Target, path: str, *hint_words: str) -> Problem:
    """The one error at ``path``; ``validate`` raises with it; its hint names ``hint_words``."""
    found = at(target, path)
    assert len(found) == 1, f"expected one problem at {path}, got {found}"
    (problem,) = found
    assert not problem.warning, f"{path} should be an error: {problem}"
    assert problem.message and problem.hint
    for word in hint_words:
        assert word in problem.hint, f"hint of {path} lacks {word!r}: {problem.hint!r}"
    with pytest.raises(ValidationError) as info:
        validate(target)
    assert problem in info.value.problems
    return problem


def warning_at(target: Target, path: str, *hint_words: str) -> Problem:
    """The one warning at ``path``; ``validate`` returns it instead of raising."""
    found = at(target, path)
    assert len(found) == 1, f"expected one problem at {path}, got {found}"
    (problem,) = found
    assert problem.warning, f"{path} should be a warning: {problem}"
    assert problem.message and problem.hint
    for word in hint_words:
        assert word in problem.hint, f"hint of {path} lacks {word!r}: {problem.hint!r}"
    if not [p for p in check(target) if not p.warning]:
        assert problem in validate(target)
    return problem


def clean_at(target: Target, path: str) -> None:
    assert at(target, path) == [], f"unexpected problem at {path}"


def supporting(flag: str) -> list[Hypervisor]:
    return [name for name, caps in TABLE.items() if getattr(caps, flag)]


def interface(kind: InterfaceType) -> Interface:
    return {
        "user": Interface.user("eth0"),
        "tap": Interface.tap_device("vm-tap"),
        "macvtap": Interface.macvtap_on("vm-mv", "eth0"),
        "bridge": Interface.on_bridge("vm-br", "br0"),
    }[kind]


def share(proto: ShareProto, **kwargs: Any) -> Share:
    values: dict[str, Any] = {"tag": "data", "source": "/srv/data", "mount_point": "/data"}
    values.update(kwargs)
    return Share(proto=proto, **values)


def quoted(key: str) -> str:
    """A key as the validator shows it in a path: ``extra["qemu.machine"]``."""
    return '"' + key.replace('"', '\\"') + '"'


INTERFACE_TYPES: tuple[InterfaceType, ...] = get_args(InterfaceType)
SHARE_PROTOS: tuple[ShareProto, ...] = get_args(ShareProto)
DEVICE_BUSES: tuple[DeviceBus, ...] = get_args(DeviceBus)
IMAGE_TYPES: tuple[ImageType, ...] = get_args(ImageType)


# ----------------------------------------------------------------- valid guests


def test_a_bare_guest_is_valid() -> None:
    assert check(vm()) == []
    assert validate(vm()) == []


@pytest.mark.parametrize("hv", HYPERVISORS)
def test_the_starter_guest_of_every_hypervisor_is_valid(hv: Hypervisor) -> None:
    flake = single_guest(Choices(hypervisor=hv, ssh_keys=("ssh-ed25519 AAAAC3Nz me@host",)))
    warnings = validate(flake)
    expected = {'guests["my-microvm"].hypervisor'} if hv == "vfkit" else set()
    assert {w.path for w in warnings} == expected
    assert all(w.warning for w in warnings)


def test_validate_takes_a_guest_a_list_or_a_flake() -> None:
    bad = vm(vcpu=0)
    for target in (bad, [bad], (bad,), Flake(guests=(bad,))):
        with pytest.raises(ValidationError) as info:
            validate(target)
        assert [p.path for p in info.value.problems] == [f"{G}.vcpu"]
    with pytest.raises(ValidationError) as info:
        validate(bad, source="nixgen.toml")
    assert info.value.source == "nixgen.toml"
    assert "in nixgen.toml" in str(info.value)


# ----------------------------------------------------------------- types


def test_wrong_types_in_a_guest_built_in_python() -> None:
    bad: Any = "qmeu"
    many: Any = "512"
    guest = vm(hypervisor=bad, mem=many)
    problem = error_at(guest, f"{G}.hypervisor", "'qemu'")
    assert problem.value == "qmeu"
    error_at(guest, f"{G}.mem", "without quotes")


def test_wrong_types_in_nested_objects() -> None:
    proto: Any = "nfs"
    guest = vm(shares=(share(proto),))
    error_at(guest, f"{G}.shares[0].proto", "'9p'", "'virtiofs'")


def test_nul_in_a_typed_string_is_a_problem() -> None:
    error_at(vm(pre_start="echo a\x00b"), f"{G}.preStart")


def test_values_nix_cannot_hold_leave_the_rules_running() -> None:
    guest = vm(mem=2**64, kernel_params=("a\x00",), vcpu=0)
    assert "64-bit" in error_at(guest, f"{G}.mem").message
    assert "NUL" in error_at(guest, f"{G}.kernelParams[0]").message
    error_at(guest, f"{G}.vcpu")  # a rule: the guest is still well-typed


def test_nul_in_a_free_value_is_a_problem() -> None:
    guest = vm(nixos={"environment.etc.x.text": "a\x00b", "n": {"m": "\x00"}})
    with pytest.raises(ValidationError) as info:
        validate(guest)
    paths = {p.path for p in info.value.problems}
    assert paths == {f'{G}.nixos["environment.etc.x.text"]', f'{G}.nixos["n"]["m"]'}
    assert all("NUL" in p.message for p in info.value.problems)


def test_mapping_keys_are_quoted_alike_in_every_path() -> None:
    guest = vm(nixos={"x": "a\x00b", "networking.hostName": "h"})
    paths = {p.path for p in check(guest)}
    assert paths == {f'{G}.nixos["x"]', f'{G}.nixos["networking.hostName"]'}


# ----------------------------------------------------------------- host name


@pytest.mark.parametrize(
    "name", ["-web", "web-", "web_1", "web.example", "", "a" * 64, "wéb", "web 1"]
)
def test_invalid_host_name(name: str) -> None:
    problem = error_at(MicroVM(name=name), f'guests["{name}"].name', "letters, digits")
    assert "RFC 1123" in problem.message
    assert problem.value == name


@pytest.mark.parametrize("name", ["a", "web", "web-1", "1web", "a" * 63, "Web"])
def test_valid_host_name(name: str) -> None:
    clean_at(MicroVM(name=name), f'guests["{name}"].name')


def test_quotes_in_a_name_are_escaped_in_the_path() -> None:
    error_at(MicroVM(name='we"b'), 'guests["we\\"b"].name')


# ----------------------------------------------------------------- sizes


def test_vcpu_at_least_one() -> None:
    error_at(vm(vcpu=0), f"{G}.vcpu", "1 or more")
    clean_at(vm(vcpu=1), f"{G}.vcpu")


def test_mem_must_be_positive() -> None:
    error_at(vm(mem=0), f"{G}.mem", "512")
    error_at(vm(mem=-5), f"{G}.mem")


@pytest.mark.parametrize("mem", [1, 16, 31])
def test_mem_below_32_is_a_warning(mem: int) -> None:
    problem = warning_at(vm(mem=mem), f"{G}.mem", "128")
    assert "32 MiB" in problem.message
    assert validate(vm(mem=mem)) == [problem]
    clean_at(vm(mem=32), f"{G}.mem")


def test_mem_2048_on_qemu_x86_64_is_a_warning() -> None:
    problem = warning_at(vm(mem=2048), f"{G}.mem", "2047")
    assert "2048" in problem.message and "qemu" in problem.message
    assert validate(vm(mem=2048)) == [problem]
    clean_at(vm(mem=2048, system="aarch64-linux"), f"{G}.mem")
    clean_at(vm(mem=2048, hypervisor="cloud-hypervisor"), f"{G}.mem")
    clean_at(vm(mem=2047), f"{G}.mem")


# ----------------------------------------------------------------- memory features vs the table


def test_hotplug_mem_cannot_be_negative() -> None:
    error_at(vm(hotplug_mem=-1, qemu=QemuOptions(machine="q35")), f"{G}.hotplugMem", "0 or more")


@pytest.mark.parametrize("hv", HYPERVISORS)
def test_hotplug_mem_needs_a_hypervisor_that_can(hv: Hypervisor) -> None:
    guest = vm(hypervisor=hv, hotplug_mem=1024)
    if hv == "qemu":
        guest = guest.evolve(qemu=QemuOptions(machine="q35"))
    if TABLE[hv].mem_hotplug:
        clean_at(guest, f"{G}.hotplugMem")
    else:
        problem = error_at(guest, f"{G}.hotplugMem", *supporting("mem_hotplug"))
        assert hv in problem.message


@pytest.mark.parametrize("machine", [None, "microvm"])
def test_hotplug_mem_not_with_qemus_microvm_machine_on_x86_64(machine: str | None) -> None:
    guest = vm(hotplug_mem=1024, qemu=QemuOptions(machine=machine) if machine else None)
    problem = error_at(guest, f"{G}.hotplugMem", "q35")
    assert "microvm" in problem.message
    # aarch64's default machine is not `microvm`
    clean_at(guest.evolve(system="aarch64-linux"), f"{G}.hotplugMem")


@pytest.mark.parametrize("hv", HYPERVISORS)
def test_balloon_needs_a_hypervisor_with_one(hv: Hypervisor) -> None:
    guest = vm(hypervisor=hv, balloon=True)
    if TABLE[hv].balloon:
        clean_at(guest, f"{G}.balloon")
    else:
        error_at(guest, f"{G}.balloon", "remove balloon", *supporting("balloon"))
    clean_at(vm(hypervisor=hv), f"{G}.balloon")


@pytest.mark.parametrize("hv", HYPERVISORS)
def test_initial_balloon_mem_is_cloud_hypervisor_only(hv: Hypervisor) -> None:
    guest = vm(hypervisor=hv, balloon=True, initial_balloon_mem=256)
    if TABLE[hv].initial_balloon_mem:
        clean_at(guest, f"{G}.initialBalloonMem")
    else:
        problem = error_at(guest, f"{G}.initialBalloonMem", "remove initialBalloonMem")
        assert "cloud-hypervisor" in problem.message
    assert supporting("initial_balloon_mem") == ["cloud-hypervisor"]


def test_initial_balloon_mem_cannot_be_negative() -> None:
    guest = vm(hypervisor="cloud-hypervisor", initial_balloon_mem=-1)
    error_at(guest, f"{G}.initialBalloonMem", "0 or more")


@pytest.mark.parametrize("hv", HYPERVISORS)
def test_hugepage_mem_is_cloud_hypervisor_only(hv: Hypervisor) -> None:
    guest = vm(hypervisor=hv, hugepage_mem=True)
    if TABLE[hv].hugepage_mem:
        clean_at(guest, f"{G}.hugepageMem")
    else:
        problem = error_at(guest, f"{G}.hugepageMem", "remove hugepageMem")
        assert "cloud-hypervisor" in problem.message
    assert supporting("hugepage_mem") == ["cloud-hypervisor"]


# ----------------------------------------------------------------- interfaces


@pytest.mark.parametrize(
    ("hv", "kind"),
    [
        (hv, kind)
        for hv in TABLE
        for kind in INTERFACE_TYPES
        if kind not in TABLE[hv].interface_types
    ],
)
def test_interface_type_unsupported_by_the_hypervisor(hv: Hypervisor, kind: InterfaceType) -> None:
    problem = error_at(
        vm(hypervisor=hv, interfaces=(interface(kind),)),
        f"{G}.interfaces[0].type",
        *sorted(TABLE[hv].interface_types),
    )
    assert hv in problem.message and kind in problem.message
    assert problem.value == kind


@pytest.mark.parametrize(
    ("hv", "kind"),
    [(hv, kind) for hv in TABLE for kind in INTERFACE_TYPES if kind in TABLE[hv].interface_types],
)
def test_interface_type_supported_by_the_hypervisor(hv: Hypervisor, kind: InterfaceType) -> None:
    guest = vm(hypervisor=hv, interfaces=(interface(kind),))
    assert [p for p in check(guest) if p.path.startswith(f"{G}.interfaces")] == []


def test_every_hypervisor_has_some_interface_type() -> None:
    for caps in TABLE.values():
        assert caps.interface_types <= set(INTERFACE_TYPES)
        assert caps.interface_types, caps.name


def test_interface_id_at_most_15_characters() -> None:
    problem = error_at(
        vm(interfaces=(Interface.tap_device("a" * 16),)), f"{G}.interfaces[0].id", "shorter"
    )
    assert "16" in problem.message and "15" in problem.message
    clean_at(vm(interfaces=(Interface.tap_device("a" * 15),)), f"{G}.interfaces[0].id")


def test_interface_id_not_empty() -> None:
    error_at(vm(interfaces=(Interface.tap_device(""),)), f"{G}.interfaces[0].id", "name")


def test_duplicate_interface_ids() -> None:
    guest = vm(interfaces=(Interface.tap_device("vm-a"), Interface.tap_device("vm-a")))
    problem = error_at(guest, f"{G}.interfaces[1].id", "own id")
    assert "interfaces[0]" in problem.message
    clean_at(guest, f"{G}.interfaces[0].id")


def test_bridge_interface_needs_its_bridge() -> None:
    iface = Interface(type="bridge", id="vm-br")
    error_at(vm(interfaces=(iface,)), f"{G}.interfaces[0].bridge", "bridge =")


@pytest.mark.parametrize("kind", ["user", "tap", "macvtap"])
def test_only_bridge_interfaces_name_a_bridge(kind: InterfaceType) -> None:
    iface = Interface(
        type=kind,
        id="vm-x",
        bridge="br0",
        macvtap=MacvtapOptions(link="eth0") if kind == "macvtap" else None,
    )
    problem = error_at(vm(interfaces=(iface,)), f"{G}.interfaces[0].bridge", "remove bridge")
    assert kind in problem.message


def test_macvtap_needs_its_link() -> None:
    iface = Interface(type="macvtap", id="vm-mv")
    error_at(vm(interfaces=(iface,)), f"{G}.interfaces[0].macvtap", "link")


def test_macvtap_settings_only_on_macvtap_interfaces() -> None:
    iface = Interface(type="tap", id="vm-t", macvtap=MacvtapOptions(link="eth0"))
    error_at(vm(interfaces=(iface,)), f"{G}.interfaces[0].macvtap", "remove macvtap")


@pytest.mark.parametrize(
    "mac", ["02:00:00:00:00", "02-00-00-00-00-01", "0200.0000.0001", "zz:00:00:00:00:01", ""]
)
def test_malformed_mac(mac: str) -> None:
    problem = error_at(
        vm(interfaces=(Interface.user(mac=mac),)), f"{G}.interfaces[0].mac", "six hex pairs"
    )
    assert problem.value == mac


@pytest.mark.parametrize("mac", ["01:00:5e:00:00:01", "03:00:00:00:00:01", "ff:ff:ff:ff:ff:ff"])
def test_multicast_mac(mac: str) -> None:
    problem = error_at(
        vm(interfaces=(Interface.user(mac=mac),)), f"{G}.interfaces[0].mac", "lowest bit"
    )
    assert "multicast" in problem.message


@pytest.mark.parametrize("mac", ["02:00:00:00:00:01", "0A:1B:2C:3D:4E:5F", "00:16:3e:00:00:01"])
def test_good_mac(mac: str) -> None:
    clean_at(vm(interfaces=(Interface.user(mac=mac),)), f"{G}.interfaces[0].mac")


def test_duplicate_mac_within_one_guest() -> None:
    mac = "02:00:00:00:00:01"
    guest = vm(
        interfaces=(Interface.tap_device("vm-a", mac=mac), Interface.tap_device("vm-b", mac=mac))
    )
    error_at(guest, f"{G}.interfaces[1].mac")


def test_duplicate_mac_within_one_guest_names_the_other_interface() -> None:
    guest = vm(
        interfaces=(
            Interface.tap_device("vm-a"),
            Interface.tap_device("vm-b", mac=stable_mac("vm", "vm-a").upper()),
        )
    )
    problem = error_at(guest, f"{G}.interfaces[1].mac", "every interface")
    assert problem.message == "is also the MAC address of interfaces[0]"
    clean_at(guest, f"{G}.interfaces[0].mac")
    # A malformed MAC is reported once, as malformed.
    bad = vm(interfaces=(Interface.user(mac="zz"), Interface.user("eth1", mac="zz")))
    assert "not a MAC" in error_at(bad, f"{G}.interfaces[1].mac").message


# ----------------------------------------------------------------- volumes


def _volume(**kwargs: Any) -> Volume:
    values: dict[str, Any] = {"image": "var.img", "mount_point": "/var", "size": 256}
    values.update(kwargs)
    return Volume(**values)


def test_duplicate_volume_images() -> None:
    guest = vm(volumes=(_volume(), _volume(mount_point="/srv")))
    problem = error_at(guest, f"{G}.volumes[1].image", "own image")
    assert "volumes[0]" in problem.message and problem.value == "var.img"
    clean_at(guest, f"{G}.volumes[0].image")


def test_empty_volume_image() -> None:
    error_at(vm(volumes=(_volume(image=""),)), f"{G}.volumes[0].image", "var.img")


@pytest.mark.parametrize("mount_point", ["var", "./var", "", "~/data"])
def test_volume_mount_point_must_be_absolute(mount_point: str) -> None:
    problem = error_at(
        vm(volumes=(_volume(mount_point=mount_point),)), f"{G}.volumes[0].mountPoint", "/"
    )
    assert "absolute" in problem.message


def test_unmounted_volume_is_fine() -> None:
    clean_at(vm(volumes=(_volume(mount_point=None),)), f"{G}.volumes[0].mountPoint")


def test_volume_size_positive_when_created() -> None:
    error_at(vm(volumes=(_volume(size=0),)), f"{G}.volumes[0].size", "256")
    error_at(vm(volumes=(_volume(size=-1),)), f"{G}.volumes[0].size")
    clean_at(vm(volumes=(_volume(size=0, auto_create=False),)), f"{G}.volumes[0].size")


@pytest.mark.parametrize(("hv", "image_type"), [(hv, t) for hv in TABLE for t in IMAGE_TYPES])
def test_image_type_vs_the_table(hv: Hypervisor, image_type: ImageType) -> None:
    guest = vm(hypervisor=hv, volumes=(_volume(image_type=image_type),))
    path = f"{G}.volumes[0].imageType"
    if image_type in TABLE[hv].image_types:
        clean_at(guest, path)
    else:
        error_at(guest, path, 'imageType = "raw"', "cloud-hypervisor")
    assert "raw" in TABLE[hv].image_types


# ----------------------------------------------------------------- shares


@pytest.mark.parametrize(
    ("hv", "proto"),
    [(hv, p) for hv in TABLE for p in SHARE_PROTOS if p not in TABLE[hv].share_protos],
)
def test_share_proto_unsupported_by_the_hypervisor(hv: Hypervisor, proto: ShareProto) -> None:
    guest = vm(hypervisor=hv, shares=(share(proto),))
    protos = TABLE[hv].share_protos
    words = [f'"{p}"' for p in protos] if protos else ["remove the share", "volume"]
    problem = error_at(guest, f"{G}.shares[0].proto", *words)
    assert hv in problem.message and proto in problem.message


def test_firecracker_has_no_shares_at_all() -> None:
    guest = vm(hypervisor="firecracker", shares=(Share.ro_store(),))
    problem = error_at(guest, f"{G}.shares[0].proto", "remove the share")
    assert "no shares at all" in problem.message
    assert TABLE["firecracker"].share_protos == frozenset()


@pytest.mark.parametrize(
    ("hv", "proto"),
    [(hv, p) for hv in TABLE for p in SHARE_PROTOS if p in TABLE[hv].share_protos],
)
def test_share_proto_supported_by_the_hypervisor(hv: Hypervisor, proto: ShareProto) -> None:
    clean_at(vm(hypervisor=hv, shares=(share(proto),)), f"{G}.shares[0].proto")


@pytest.mark.parametrize("hv", [hv for hv, caps in TABLE.items() if "9p" in caps.share_protos])
def test_read_only_9p(hv: Hypervisor) -> None:
    guest = vm(hypervisor=hv, shares=(share("9p", read_only=True),))
    path = f"{G}.shares[0].readOnly"
    if TABLE[hv].ninep_read_write_only:
        problem = error_at(guest, path, "readOnly = false", '"virtiofs"')
        assert hv in problem.message
    else:
        clean_at(guest, path)
    clean_at(vm(hypervisor=hv, shares=(share("9p"),)), path)


def test_kvmtool_and_crosvm_have_no_read_only_9p() -> None:
    assert {hv for hv, c in TABLE.items() if c.ninep_read_write_only} == {"kvmtool", "crosvm"}
    # crosvm can share read-only over virtiofs instead
    clean_at(
        vm(hypervisor="crosvm", shares=(share("virtiofs", read_only=True),)),
        f"{G}.shares[0].readOnly",
    )


def test_empty_share_tag_and_source() -> None:
    guest = vm(shares=(Share(tag="", source="", mount_point="/x"),))
    error_at(guest, f"{G}.shares[0].tag", "name the share")
    error_at(guest, f"{G}.shares[0].source", "host folder")


def test_duplicate_share_tags() -> None:
    guest = vm(shares=(share("9p"), share("9p", mount_point="/other")))
    problem = error_at(guest, f"{G}.shares[1].tag", "own tag")
    assert "shares[0]" in problem.message
    clean_at(guest, f"{G}.shares[0].tag")


@pytest.mark.parametrize("mount_point", ["data", "./data", ""])
def test_share_mount_point_must_be_absolute(mount_point: str) -> None:
    guest = vm(shares=(share("9p", mount_point=mount_point),))
    problem = error_at(guest, f"{G}.shares[0].mountPoint", "start it with /")
    assert "absolute" in problem.message


def test_duplicate_explicit_virtiofs_sockets() -> None:
    guest = vm(
        shares=(
            Share(tag="a", source="/a", mount_point="/a", proto="virtiofs", socket="fs.sock"),
            Share(tag="b", source="/b", mount_point="/b", proto="virtiofs", socket="fs.sock"),
        )
    )
    problem = error_at(guest, f"{G}.shares[1].socket", "own socket")
    assert "fs.sock" in problem.message and "shares[0]" in problem.message


def test_default_virtiofs_socket_collides_with_an_explicit_one() -> None:
    guest = vm(
        shares=(
            Share.virtiofs("data", "/srv/data", "/data"),  # socket vm-virtiofs-data.sock
            Share(
                tag="b",
                source="/b",
                mount_point="/b",
                proto="virtiofs",
                socket="vm-virtiofs-data.sock",
            ),
        )
    )
    problem = error_at(guest, f"{G}.shares[1].socket", "own socket")
    assert problem.value == "vm-virtiofs-data.sock"


def test_default_virtiofs_sockets_differ_by_tag() -> None:
    guest = vm(
        shares=(Share.virtiofs("a", "/a", "/a"), Share.virtiofs("b", "/b", "/b")),
    )
    assert check(guest) == []


def test_9p_shares_have_no_virtiofs_socket() -> None:
    guest = vm(
        shares=(
            Share(tag="a", source="/a", mount_point="/a", proto="9p", socket="x.sock"),
            Share(tag="b", source="/b", mount_point="/b", proto="virtiofs", socket="x.sock"),
        )
    )
    clean_at(guest, f"{G}.shares[1].socket")


@pytest.mark.parametrize(
    "arg", ["--translate-uid=map:0:1000:1", "--translate-gid=squash-guest:0:0:1"]
)
def test_posix_acl_conflicts_with_uid_translation_in_share_args(arg: str) -> None:
    guest = vm(shares=(share("virtiofs", extra_args=(arg,)),))
    problem = error_at(guest, f"{G}.shares[0].posixAcl", "posixAcl = false", "--translate")
    assert arg in problem.message
    clean_at(
        vm(shares=(share("virtiofs", extra_args=(arg,), posix_acl=False),)),
        f"{G}.shares[0].posixAcl",
    )


def test_posix_acl_conflicts_with_uid_translation_in_virtiofsd_args() -> None:
    guest = vm(
        shares=(share("virtiofs"),),
        virtiofsd=VirtiofsdOptions(extra_args=("--translate-uid=map:0:1000:1",)),
    )
    error_at(guest, f"{G}.shares[0].posixAcl", "posixAcl = false")
    clean_at(vm(shares=(share("virtiofs"),)), f"{G}.shares[0].posixAcl")


# ----------------------------------------------------------------- devices


@pytest.mark.parametrize(("hv", "bus"), [(hv, bus) for hv in TABLE for bus in DEVICE_BUSES])
def test_passthrough_bus_vs_the_table(hv: Hypervisor, bus: DeviceBus) -> None:
    guest = vm(hypervisor=hv, devices=(Device(bus=bus, path="0000:01:00.0"),))
    path = f"{G}.devices[0].bus"
    if bus in TABLE[hv].passthrough:
        clean_at(guest, path)
    else:
        able = [n for n, c in TABLE.items() if bus in c.passthrough]
        problem = error_at(guest, path, *able)
        assert hv in problem.message and bus in problem.message


def test_device_path_not_empty() -> None:
    error_at(vm(devices=(Device(bus="pci", path=""),)), f"{G}.devices[0].path", "PCI address")


# ----------------------------------------------------------------- forwarded ports


@pytest.mark.parametrize("hv", HYPERVISORS)
def test_forward_ports_need_qemu(hv: Hypervisor) -> None:
    guest = vm(
        hypervisor=hv, interfaces=(Interface.user(),), forward_ports=(ForwardPort.tcp(2222, 22),)
    )
    if TABLE[hv].forward_ports:
        clean_at(guest, f"{G}.forwardPorts")
    else:
        problem = error_at(guest, f"{G}.forwardPorts", 'hypervisor = "qemu"', "Interface.user()")
        assert hv in problem.message
    assert supporting("forward_ports") == ["qemu"]


def test_forward_ports_need_a_user_interface() -> None:
    guest = vm(
        interfaces=(Interface.tap_device("vm-t"),), forward_ports=(ForwardPort.tcp(2222, 22),)
    )
    problem = error_at(guest, f"{G}.forwardPorts", "Interface.user()")
    assert "user" in problem.message
    error_at(vm(forward_ports=(ForwardPort.tcp(2222, 22),)), f"{G}.forwardPorts")


@pytest.mark.parametrize(("host", "guest_port"), [(-1, 22), (70000, 22), (2222, 65536)])
def test_forwarded_port_numbers(host: int, guest_port: int) -> None:
    fwd = ForwardPort(host=PortEnd(port=host), guest=PortEnd(port=guest_port))
    guest = vm(interfaces=(Interface.user(),), forward_ports=(fwd,))
    side = "host" if not 0 <= host <= 65535 else "guest"
    error_at(guest, f"{G}.forwardPorts[0].{side}.port", "65535")
    clean_at(guest, f"{G}.forwardPorts")


# ----------------------------------------------------------------- vsock


@pytest.mark.parametrize("cid", [0, 1, 2, -1])
def test_vsock_cid_below_3_is_reserved(cid: int) -> None:
    problem = error_at(vm(vsock=Vsock(cid=cid)), f"{G}.vsock.cid", "3 or more")
    assert problem.value == cid
    clean_at(vm(vsock=Vsock(cid=3)), f"{G}.vsock.cid")


@pytest.mark.parametrize("hv", HYPERVISORS)
def test_vsock_needs_a_hypervisor_with_it(hv: Hypervisor) -> None:
    guest = vm(hypervisor=hv, vsock=Vsock(cid=42))
    if TABLE[hv].vsock:
        clean_at(guest, f"{G}.vsock.cid")
    else:
        problem = error_at(guest, f"{G}.vsock.cid", "remove vsock", *supporting("vsock"))
        assert hv in problem.message


def test_vsock_on_stratovirt() -> None:
    error_at(vm(hypervisor="stratovirt", vsock=Vsock(cid=5)), f"{G}.vsock.cid", "qemu")


def test_vsock_cid_unique_across_guests() -> None:
    flake = Flake(
        guests=(MicroVM(name="a", vsock=Vsock(cid=7)), MicroVM(name="b", vsock=Vsock(cid=7)))
    )
    problem = error_at(flake, 'guests["b"].vsock.cid', "own cid")
    assert "'a'" in problem.message
    clean_at(flake, 'guests["a"].vsock.cid')
    distinct = Flake(
        guests=(MicroVM(name="a", vsock=Vsock(cid=7)), MicroVM(name="b", vsock=Vsock(cid=8)))
    )
    assert check(distinct) == []


def test_vsock_without_cid_is_not_checked() -> None:
    assert check(vm(hypervisor="stratovirt", vsock=Vsock())) == []


# ----------------------------------------------------------------- qemu-only options


@pytest.mark.parametrize("hv", HYPERVISORS)
def test_user_is_qemu_only(hv: Hypervisor) -> None:
    guest = vm(hypervisor=hv, user="microvm")
    if TABLE[hv].user_and_credentials:
        clean_at(guest, f"{G}.user")
    else:
        problem = error_at(guest, f"{G}.user", "remove `user`", 'hypervisor = "qemu"')
        assert hv in problem.message


@pytest.mark.parametrize("hv", HYPERVISORS)
def test_credential_files_are_qemu_only(hv: Hypervisor) -> None:
    guest = vm(hypervisor=hv, credential_files={"token": "/run/secrets/token"})
    if TABLE[hv].user_and_credentials:
        clean_at(guest, f"{G}.credentialFiles")
    else:
        problem = error_at(guest, f"{G}.credentialFiles", "remove credentialFiles")
        assert hv in problem.message
    assert supporting("user_and_credentials") == ["qemu"]


@pytest.mark.parametrize("hv", HYPERVISORS)
def test_emulated_cpu(hv: Hypervisor) -> None:
    guest = vm(hypervisor=hv, cpu="cortex-a53")
    if TABLE[hv].emulated_cpu:
        problem = warning_at(guest, f"{G}.cpu", "leave `cpu` unset")
        assert "TCG" in problem.message
    else:
        error_at(guest, f"{G}.cpu", "remove `cpu`")


# ----------------------------------------------------------------- graphics, store


@pytest.mark.parametrize("hv", HYPERVISORS)
def test_graphics_vs_the_table(hv: Hypervisor) -> None:
    guest = vm(hypervisor=hv, graphics=Graphics(enable=True))
    if TABLE[hv].graphics:
        clean_at(guest, f"{G}.graphics.enable")
    else:
        problem = error_at(guest, f"{G}.graphics.enable", *supporting("graphics"))
        assert hv in problem.message
    clean_at(vm(hypervisor=hv, graphics=Graphics(enable=False)), f"{G}.graphics.enable")


def test_store_disk_type_without_a_store_disk_is_a_warning() -> None:
    guest = vm(shares=(Share.ro_store(),), store_disk_type="squashfs")
    problem = warning_at(guest, f"{G}.storeDiskType", "remove storeDiskType", "storeOnDisk = true")
    assert problem.value == "squashfs"
    clean_at(guest.evolve(store_on_disk=True), f"{G}.storeDiskType")
    clean_at(vm(store_disk_type="erofs"), f"{G}.storeDiskType")


# ----------------------------------------------------------------- groups and extra


@pytest.mark.parametrize(
    ("field", "option", "value"),
    [
        ("qemu", "qemu", QemuOptions()),
        ("cloud_hypervisor", "cloud-hypervisor", CloudHypervisorOptions()),
        ("firecracker", "firecracker", FirecrackerOptions()),
        ("crosvm", "crosvm", CrosvmOptions()),
        ("vfkit", "vfkit", VfkitOptions()),
    ],
)
def test_settings_for_another_hypervisor_are_a_warning(
    field: str, option: Hypervisor, value: object
) -> None:
    other: Hypervisor = "crosvm" if option != "crosvm" else "qemu"
    guest = vm(hypervisor=other, **{field: value})
    problem = warning_at(guest, f"{G}.{option}", "remove them", f'hypervisor = "{option}"')
    assert other in problem.message
    clean_at(guest.evolve(hypervisor=option), f"{G}.{option}")


def test_vfkit_is_a_macos_only_warning() -> None:
    problem = warning_at(vm(hypervisor="vfkit"), f"{G}.hypervisor", "Mac")
    assert "macOS" in problem.message
    assert TABLE["vfkit"].macos_host_only


@pytest.mark.parametrize(
    "key", ["mem", "interfaces", "qemu", "qemu.machine", "vsock.cid", "vsock", "graphics.enable"]
)
def test_extra_keys_covered_by_model_fields(key: str) -> None:
    problem = error_at(vm(extra={key: 1}), f"{G}.extra[{quoted(key)}]", "directly")
    assert f"microvm.{key}" in problem.message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("optimize.enable", True),
        ("qemu.package", Nix("pkgs.qemu")),
        ("prettyProcnames", False),
        ("binScripts.foo", "echo hi"),
        ("vsock.ssh.enable", True),
    ],
)
def test_extra_keys_not_in_the_model_are_fine(key: str, value: object) -> None:
    clean_at(vm(extra={key: value}), f"{G}.extra[{quoted(key)}]")


@pytest.mark.parametrize("key", ["credentialFiles.token", "qemu.machineOpts.x", "vfkit.rosetta"])
def test_extra_keys_inside_modelled_options_are_covered(key: str) -> None:
    error_at(vm(extra={key: "x"}), f"{G}.extra[{quoted(key)}]", "directly")


def test_extra_key_below_a_nested_group_is_covered() -> None:
    error_at(
        vm(hypervisor="vfkit", extra={"vfkit.rosetta.enable": True}),
        f'{G}.extra["vfkit.rosetta.enable"]',
    )


# ----------------------------------------------------------------- the NixOS side


@pytest.mark.parametrize("name", ["Root", "1user", "us er", "bad!"])
def test_invalid_user_name(name: str) -> None:
    problem = error_at(vm(users=(User(name=name),)), f"{G}.users[0].name", "lower-case")
    assert problem.value == name


def test_valid_user_names() -> None:
    assert check(vm(users=(User(name="root"), User(name="_svc-1"), User(name="alice")))) == []


@pytest.mark.parametrize(
    "key", ["AAAAC3NzaC1lZDI1NTE5", "", "rsa AAAA", "/home/me/.ssh/id_ed25519.pub"]
)
def test_invalid_ssh_key(key: str) -> None:
    guest = vm(users=(User(name="root", ssh_keys=("ssh-ed25519 AAAA ok", key)),))
    error_at(guest, f"{G}.users[0].sshKeys[1]", "ssh-")
    clean_at(guest, f"{G}.users[0].sshKeys[0]")


@pytest.mark.parametrize(
    "key",
    [
        "ssh-ed25519 AAAAC3Nz me",
        "ssh-rsa AAAAB3Nza me",
        "ecdsa-sha2-nistp256 AAAAE2V me",
        "sk-ssh-ed25519@openssh.com AAAA me",
    ],
)
def test_valid_ssh_keys(key: str) -> None:
    assert check(vm(users=(User(name="root", ssh_keys=(key,)),))) == []


def test_empty_root_password_is_a_warning() -> None:
    problem = warning_at(
        vm(allow_empty_root_password=True), f"{G}.allowEmptyRootPassword", "SSH keys"
    )
    assert "empty password" in problem.message
    assert validate(vm(allow_empty_root_password=True)) == [problem]


@pytest.mark.parametrize("pkg", ["foo bar", "1abc", "a..b", "pkgs.", "", "htop;rm"])
def test_invalid_package_names(pkg: str) -> None:
    problem = error_at(vm(packages=("htop", pkg)), f"{G}.packages[1]", "htop")
    assert problem.value == pkg


def test_valid_packages() -> None:
    guest = vm(packages=("htop", "python3Packages.requests", "gnome-console", Nix("pkgs.hello")))
    assert check(guest) == []


@pytest.mark.parametrize(
    "key",
    [
        "networking.hostName",
        "system.stateVersion",
        "microvm",
        "microvm.mem",
        "microvm.qemu.extraArgs",
    ],
)
def test_nixos_keys_clashing_with_nixgens_own(key: str) -> None:
    problem = error_at(
        vm(nixos={key: "x"}), f"{G}.nixos[{quoted(key)}]", "field of MicroVM", "extra"
    )
    assert "set by nixgen" in problem.message


@pytest.mark.parametrize(
    "key",
    ["networking.firewall.enable", "networking.hostNameSuffix", "systemd.services.x", "imports"],
)
def test_other_nixos_keys_are_fine(key: str) -> None:
    clean_at(vm(nixos={key: True}), f"{G}.nixos[{quoted(key)}]")


@pytest.mark.parametrize(
    ("value", "own"),
    [
        ({"hostName": "x"}, "networking.hostName"),
        ({"hostName": "x", "firewall": {"enable": False}}, "networking.hostName"),
    ],
)
def test_nested_nixos_key_clashing_with_nixgens_own(value: dict[str, Any], own: str) -> None:
    # render would write networking.hostName twice in vms/<name>.nix: Nix rejects that
    problem = error_at(
        vm(nixos={"networking": value}), f'{G}.nixos["networking"]', "field of MicroVM"
    )
    assert own in problem.message


def test_nested_nixos_keys_elsewhere_are_fine() -> None:
    guest = vm(nixos={"networking": {"firewall": {"enable": False}}, "system": {"autoUpgrade": {}}})
    assert check(guest) == []


def test_unreadable_nixos_key() -> None:
    key = 'a."b'
    problem = error_at(vm(nixos={key: 1}), f"{G}.nixos[{quoted(key)}]")
    assert "quote" in problem.message


# ----------------------------------------------------------------- the flake


def test_a_flake_without_guests_is_a_warning() -> None:
    problem = warning_at(Flake(), "guests", "MicroVM")
    assert validate(Flake()) == [problem]


def test_two_guests_with_one_name() -> None:
    flake = Flake(guests=(vm(), vm(mem=1024)))
    error_at(flake, f"{G}.name", "rename")


def test_duplicate_macs_across_guests() -> None:
    flake = Flake(
        guests=(
            MicroVM(name="a", interfaces=(Interface.user(mac="02:aa:00:00:00:01"),)),
            MicroVM(name="b", interfaces=(Interface.user(mac="02:AA:00:00:00:01"),)),
        )
    )
    problem = error_at(flake, 'guests["b"].interfaces[0].mac', "own MAC")
    assert "'a'" in problem.message
    clean_at(flake, 'guests["a"].interfaces[0].mac')


def test_a_given_mac_equal_to_another_guests_stable_mac() -> None:
    flake = Flake(
        guests=(
            MicroVM(name="a", interfaces=(Interface.user(),)),
            MicroVM(name="b", interfaces=(Interface.user(mac=stable_mac("a", "eth0")),)),
        )
    )
    error_at(flake, 'guests["b"].interfaces[0].mac', "own MAC")


def test_same_interface_id_in_two_guests_gets_two_macs() -> None:
    flake = Flake(
        guests=(
            MicroVM(name="a", interfaces=(Interface.user(),)),
            MicroVM(name="b", interfaces=(Interface.user(),)),
        )
    )
    assert check(flake) == []


@pytest.mark.parametrize(
    ("first", "second"), [("tap", "tap"), ("tap", "macvtap"), ("macvtap", "macvtap")]
)
def test_host_interface_names_shared_by_two_guests(first: str, second: str) -> None:
    def iface(kind: str) -> Interface:
        if kind == "tap":
            return Interface.tap_device("vm-shared")
        return Interface.macvtap_on("vm-shared", "eth0")

    flake = Flake(
        guests=(
            MicroVM(name="a", interfaces=(iface(first),)),
            MicroVM(name="b", interfaces=(iface(second),)),
        )
    )
    problem = error_at(flake, 'guests["b"].interfaces[0].id', "own host interface name")
    assert "'a'" in problem.message and problem.value == "vm-shared"


def test_user_interface_ids_are_not_host_names() -> None:
    flake = Flake(
        guests=(
            MicroVM(name="a", interfaces=(Interface.user("eth0"),)),
            MicroVM(name="b", interfaces=(Interface.on_bridge("eth0", "br0"),)),
        )
    )
    assert check(flake) == []


def test_default_must_name_a_guest() -> None:
    flake = Flake(guests=(MicroVM(name="web"), MicroVM(name="db")), default="cache")
    problem = error_at(flake, "default", "web", "db")
    assert problem.value == "cache"
    assert check(flake.evolve(default="db")) == []
    error_at(Flake(default="x"), "default", "(no guests)")


@pytest.mark.parametrize("missing", ["nixpkgs", "microvm"])
def test_inputs_need_nixpkgs_and_microvm(missing: str) -> None:
    inputs = tuple(i for i in DEFAULT_INPUTS if i.name != missing)
    if missing == "nixpkgs":
        inputs = (Input(name="microvm", url="github:microvm-nix/microvm.nix"),)
    flake = Flake(guests=(vm(),), inputs=inputs)
    problem = error_at(flake, "inputs", repr(missing))
    assert missing in problem.message


def test_follows_must_name_an_input() -> None:
    flake = Flake(
        guests=(vm(),),
        inputs=(
            *DEFAULT_INPUTS,
            Input(name="extra", url="github:a/b", follows={"nixpkgs": "nixpkgs-stable"}),
        ),
    )
    problem = error_at(flake, 'inputs["extra"].follows["nixpkgs"]', "nixpkgs", "microvm")
    assert "nixpkgs-stable" in problem.message
    # a follows path through an input names that input first
    nested = Flake(
        guests=(vm(),),
        inputs=(
            *DEFAULT_INPUTS,
            Input(name="x", url="github:a/b", follows={"n": "microvm/nixpkgs"}),
        ),
    )
    assert check(nested) == []


@pytest.mark.parametrize("name", ["bad.name", "1st", "has space", ""])
def test_invalid_input_name(name: str) -> None:
    flake = Flake(guests=(vm(),), inputs=(*DEFAULT_INPUTS, Input(name=name, url="github:a/b")))
    error_at(flake, f'inputs["{name}"].name', "letters")


def test_input_url_not_empty() -> None:
    flake = Flake(guests=(vm(),), inputs=(*DEFAULT_INPUTS, Input(name="x", url="")))
    error_at(flake, 'inputs["x"].url', "github:")


# ----------------------------------------------------------------- all at once


def test_one_error_lists_every_problem_of_a_flake() -> None:
    flake = Flake(
        guests=(
            MicroVM(
                name="web",
                hypervisor="firecracker",
                shares=(Share.ro_store(),),
                interfaces=(Interface.user(),),
                balloon=True,
            ),
            MicroVM(
                name="db_1",
                mem=2048,
                vsock=Vsock(cid=2),
                volumes=(_volume(mount_point="var"),),
            ),
            MicroVM(
                name="cache",
                hypervisor="cloud-hypervisor",
                interfaces=(Interface.tap_device("vm-cache-too-long"),),
                user="nobody",
                allow_empty_root_password=True,
            ),
        ),
        default="nope",
    )
    with pytest.raises(ValidationError) as info:
        validate(flake, source="nixgen.toml")
    paths = {p.path for p in info.value.problems}
    assert paths == {
        'guests["web"].shares[0].proto',
        'guests["web"].interfaces[0].type',
        'guests["web"].balloon',
        'guests["db_1"].name',
        'guests["db_1"].vsock.cid',
        'guests["db_1"].volumes[0].mountPoint',
        'guests["cache"].interfaces[0].id',
        'guests["cache"].user',
        "default",
    }
    assert all(not p.warning for p in info.value.problems), "warnings are not errors"
    # the warnings are still found by check()
    warnings = {p.path for p in check(flake) if p.warning}
    assert warnings == {'guests["db_1"].mem', 'guests["cache"].allowEmptyRootPassword'}
    text = str(info.value)
    assert text.startswith("9 problems in nixgen.toml:")
    assert "hint:" in text


# --- values that a command would read as options (issue 13, item 7)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("-oProxyCommand=touch /tmp/x", "starts with '-'"),
        ("-J evil", "starts with '-'"),
        ("root@host:22", "not an ssh destination"),
        ("host name", "not an ssh destination"),
        ("host?remote-store=/x", "not an ssh destination"),
        ("root@-oX", "not an ssh destination"),
        ("", "not an ssh destination"),
    ],
)
def test_target_hosts_that_ssh_could_misread_are_refused(target: str, message: str) -> None:
    flake = Flake(hosts=[Host(name="alpha", nixos_configuration=True, target_host=target)])
    problem = error_at(flake, 'hosts["alpha"].targetHost', "user@")
    assert message in problem.message and problem.value == target


@pytest.mark.parametrize(
    "target", ["alpha", "root@alpha.example", "deploy_1@10.0.0.2", "[fd00::1]"]
)
def test_ssh_destinations_pass(target: str) -> None:
    flake = Flake(hosts=[Host(name="alpha", nixos_configuration=True, target_host=target)])
    clean_at(flake, 'hosts["alpha"].targetHost')


def test_image_names_that_look_like_options_are_refused() -> None:
    dashed = vm(volumes=[Volume(image="-drive.img", mount_point="/var", size=64)])
    assert "starts with '-'" in error_at(dashed, 'guests["vm"].volumes[0].image').message
    comma = vm(volumes=[Volume(image="var.img,if=none", mount_point="/var", size=64)])
    assert "','" in error_at(comma, 'guests["vm"].volumes[0].image').message
    clean_at(
        vm(volumes=[Volume(image="./-ok.img", mount_point="/var", size=64)]),
        'guests["vm"].volumes[0].image',
    )


def test_module_paths_with_a_leading_dash_are_refused() -> None:
    guest = vm(modules=[PurePosixPath("modules/-x.nix")])
    error_at(guest, 'guests["vm"].modules[0]', "without a leading dash")
    host = Flake(
        hosts=[Host(name="alpha", nixos_configuration=True, modules=[PurePosixPath("-hw.nix")])]
    )
    error_at(host, 'hosts["alpha"].modules[0]', "without a leading dash")
    clean_at(vm(modules=[PurePosixPath("modules/web-x.nix")]), 'guests["vm"].modules[0]')


@pytest.mark.parametrize("ifname", ["-vm-web", "vm,script=x", "vm/web", "vm web"])
def test_interface_ids_that_ip_or_qemu_could_misread_are_refused(ifname: str) -> None:
    guest = vm(interfaces=[Interface.tap_device(ifname)])
    assert error_at(guest, 'guests["vm"].interfaces[0].id', "not starting with '-'").value == ifname
