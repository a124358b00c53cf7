"""The one model ↔ Nix settings mapping (nixgen.settings): both directions agree."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nixgen import ForwardPort, Interface, MicroVM, Nix, Share, User, ValidationError, Volume
from nixgen.errors import OptionError
from nixgen.model.devices import PortEnd
from nixgen.model.guest import Hypervisor, System
from nixgen.nix.parse import Document
from nixgen.nix.read import read_module
from nixgen.render import guest_module
from nixgen.settings import from_settings, model_from_settings, to_settings

NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
WORDS = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
MACS = st.from_regex(
    r"02:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}", fullmatch=True
)

# Free settings with leaf values under option paths no model field stands for.
NIXOS_KEYS = [
    "services.nginx.enable",
    "boot.kernelModules",
    "time.timeZone",
    'environment.etc."a.conf".text',
]
EXTRA_KEYS = ["optimize.enable", "binScripts.hello", "kernel.extraConfig"]
LEAVES = st.one_of(
    st.booleans(),
    st.integers(-(2**31), 2**31),
    TEXT,
    st.lists(TEXT, max_size=3),
    st.sampled_from([Nix("lib.mkDefault 3"), Nix("pkgs.hello"), Nix("config.networking.hostName")]),
)


@st.composite
def users(draw: st.DrawFn) -> list[User]:
    names = draw(st.lists(st.one_of(st.just("root"), NAMES), max_size=3, unique=True))
    out = []
    for name in names:
        user = User(
            name=name,
            ssh_keys=draw(st.lists(st.just("ssh-ed25519 AAAAC3Nza me@host"), max_size=1)),
            groups=draw(st.lists(WORDS, max_size=2)),
            hashed_password=draw(st.none() | st.just("$6$salt$hash")),
        )
        if name == "root" and not (user.ssh_keys or user.groups or user.hashed_password):
            # `users.users.root = { };` says nothing: the model has no such spelling
            user = User(name="root", groups=["wheel"])
        out.append(user)
    return out


@st.composite
def guests(draw: st.DrawFn) -> MicroVM:
    name = draw(NAMES)
    drawn_users = draw(users())
    keys = any(u.ssh_keys for u in drawn_users)
    return MicroVM(
        name=name,
        hypervisor=draw(st.sampled_from(typing.get_args(Hypervisor))),
        vcpu=draw(st.integers(1, 64)),
        mem=draw(st.integers(128, 65536)),
        system=draw(st.sampled_from(typing.get_args(System))),
        state_version=draw(st.sampled_from(["24.11", "25.05"])),
        interfaces=draw(
            st.lists(
                st.builds(
                    Interface,
                    type=st.sampled_from(["user", "tap", "bridge"]),
                    id=WORDS,
                    mac=MACS,
                ),
                max_size=2,
            )
        ),
        volumes=draw(
            st.lists(
                st.builds(
                    Volume,
                    image=WORDS.map(lambda w: f"{w}.img"),
                    size=st.integers(1, 4096),
                    mount_point=st.none() | WORDS.map(lambda w: f"/{w}"),
                    read_only=st.booleans(),
                ),
                max_size=2,
            )
        ),
        shares=draw(
            st.lists(
                st.builds(
                    Share,
                    tag=WORDS,
                    source=WORDS.map(lambda w: f"/srv/{w}"),
                    mount_point=WORDS.map(lambda w: f"/mnt/{w}"),
                    proto=st.sampled_from(["9p", "virtiofs"]),
                ),
                max_size=2,
            )
        ),
        forward_ports=draw(
            st.lists(
                st.builds(
                    ForwardPort,
                    host=st.builds(PortEnd, port=st.integers(1, 65535)),
                    guest=st.builds(PortEnd, port=st.integers(1, 65535)),
                ),
                max_size=1,
            )
        ),
        balloon=draw(st.booleans()),
        kernel_params=draw(st.lists(WORDS, max_size=2)),
        store_on_disk=draw(st.none() | st.booleans()),
        extra=draw(st.dictionaries(st.sampled_from(EXTRA_KEYS), LEAVES, max_size=2)),
        users=drawn_users,
        # ssh=True with keys and ssh=False without are the model's second spellings of None
        ssh=draw(st.sampled_from([None, False] if keys else [None, True])),
        allow_empty_root_password=draw(st.booleans()),
        packages=draw(
            st.lists(st.one_of(WORDS, st.just(Nix("inputs.x.packages.default"))), max_size=2)
        ),
        nixos=draw(st.dictionaries(st.sampled_from(NIXOS_KEYS), LEAVES, max_size=3)),
    )


@given(guests())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_from_settings_inverts_to_settings(vm: MicroVM) -> None:
    assert from_settings(to_settings(vm)) == vm


@given(guests())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_to_settings_is_what_reading_the_rendered_module_gives(vm: MicroVM) -> None:
    module = read_module(Document.parse(guest_module(vm)))
    assert {"system": vm.system, **{s.key: s.value for s in module.settings}} == to_settings(vm)


def test_keys_without_sshd_read_back_as_sshd_off() -> None:
    vm = MicroVM(name="web", users=[User(name="root", ssh_keys=["ssh-ed25519 AAAA k"])], ssh=False)
    settings = to_settings(vm)
    assert "services.openssh.enable" not in settings
    back = from_settings(settings)
    assert back.ssh is False and not back.ssh_enabled


def test_from_settings_refuses_what_the_model_cannot_hold() -> None:
    settings: dict[str, Any] = {
        **to_settings(MicroVM(name="web")),
        "microvm.mem": Nix("lib.mkDefault 1024"),
    }
    with pytest.raises(ValidationError) as caught:
        from_settings(settings)
    assert 'guests["web"].microvm.mem' in str(caught.value)
    vm, unmodelled = model_from_settings("web", settings)
    assert vm.mem == 512 and set(unmodelled) == {"microvm.mem"}


def test_from_settings_needs_a_name() -> None:
    with pytest.raises(OptionError, match=r"no literal networking\.hostName"):
        from_settings({"microvm.mem": 1024})
    assert from_settings({"microvm.mem": 1024}, name="db") == MicroVM(name="db", mem=1024)
