"""Rules over the model, checked before Nix ever runs.

Every assertion microvm.nix makes at evaluation time, the hypervisor table
of :mod:`nixgen.hypervisors`, and the mistakes people make most.  All
problems are collected, so one run shows everything to fix.
:func:`validate` raises one :class:`~nixgen.errors.ValidationError` listing
every error and returns the warnings; nothing here prints.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath

import attrs

from nixgen.errors import NixgenError, Problem, ValidationError, keyed
from nixgen.hypervisors import TABLE, Capabilities, supporting
from nixgen.model import Flake, Host, Interface, MicroVM, Share
from nixgen.model.attrpath import parse_attr_path
from nixgen.model.convert import check_types
from nixgen.model.fields import describe, group_class
from nixgen.model.guest import NON_MICROVM_FIELDS
from nixgen.model.memo import ByIdentity
from nixgen.schema import NIXOS_NAMESPACES, Schema, Side, packaged_schema

__all__ = ["check", "ssh_destination_problem", "type_errors", "validate"]

_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}\Z")
_ATTR_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_'-]*(\.[A-Za-z_][A-Za-z0-9_'-]*)*\Z")
# The patterns of users, keys and deploy targets are plain text, compiled (and kept)
# by re when first matched: most projects have none, and each costs a start ~0.1 ms.
_USERNAME = r"[a-z_][a-z0-9_-]*[$]?\Z"
# An ssh destination `[user@]host` as ssh, `nix copy --to ssh://…` and
# nixos-rebuild all read it: no port (ssh_config has Port), no option, no URL parts.
_SSH_DESTINATION = (
    r"(?:[A-Za-z0-9_][A-Za-z0-9._-]*@)?(?:[A-Za-z0-9_][A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\])\Z"
)
_IFNAME_MAX = 15  # Linux IFNAMSIZ - 1
_IFNAME_BAD = re.compile(r"[,/:\s]")
_TRANSLATE_IDS = ("--translate-uid", "--translate-gid")
_OWN_NIXOS_KEYS = ("networking.hostName", "system.stateVersion", "microvm")
# `packages.<system>.default` is the default runner: a guest cannot take its name.
_RESERVED_NAMES = frozenset({"default"})
_WHITESPACE = re.compile(r"\s")
# What upstream's runner script can hold unquoted (it pastes volume images in).
_SHELL_SAFE = re.compile(r"[A-Za-z0-9._+/@%:,=-]+\Z")
# crypt(3) hashes ($id$[params$]salt$hash, or $2b$ for bcrypt), or a locked
# password ("!" or "*" before an optional hash).
_CRYPT_HASH = r"[!*]?(\$[0-9a-z]+(\$[A-Za-z0-9./=,+-]*)+)?\Z"
_SSH_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ssh-dss",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
_BASE64 = r"[A-Za-z0-9+/]+={0,2}\Z"
# Keys of a NixOS module that are not options.
_MODULE_KEYS = frozenset({"imports", "disabledModules", "_file", "key"})
# What nixgen writes for each of a host's guests (``microvm.vms.<name>.*``).
_HOST_VM_FIELDS = ("flake", "config", "updateFlake", "autostart", "restartIfChanged")
# Hosts (NixOS hosts run neither vfkit nor darwin guests).
_HOST_ONLY_HYPERVISORS = ("vfkit",)


class _Checker:
    def __init__(self, schema: Schema) -> None:
        self.found: list[Problem] = []
        self.schema = schema

    def error(self, path: str, message: str, hint: str, value: object = None) -> None:
        self.found.append(Problem(path=path, message=message, hint=hint, value=value))

    def warn(self, path: str, message: str, hint: str, value: object = None) -> None:
        self.found.append(Problem(path=path, message=message, hint=hint, value=value, warning=True))

    # ------------------------------------------------------------- one guest

    def guest(self, vm: MicroVM, at: str) -> None:
        caps = TABLE[vm.hypervisor]
        hv = vm.hypervisor
        if not _HOSTNAME.match(vm.name):
            self.error(
                f"{at}.name",
                "is not a valid host name (RFC 1123 label)",
                "use 1 to 63 letters, digits and '-', not starting or ending with '-'",
                vm.name,
            )
        self._sizes(vm, at, caps)
        self._module_paths(vm.modules, f"{at}.modules")
        self._interfaces(vm, at, caps)
        self._volumes(vm, at, caps)
        self._shares(vm, at, caps)
        for i, dev in enumerate(vm.devices):
            if dev.bus not in caps.passthrough:
                self.error(
                    f"{at}.devices[{i}].bus",
                    f"{hv} cannot pass through {dev.bus} devices",
                    f"use a hypervisor with {dev.bus} passthrough: "
                    + ", ".join(n for n, c in TABLE.items() if dev.bus in c.passthrough),
                    dev.bus,
                )
            if not dev.path:
                self.error(
                    f"{at}.devices[{i}].path", "is empty", "give the PCI address or USB spec"
                )
        self._forward_ports(vm, at, caps)
        if vm.vsock is not None and vm.vsock.cid is not None:
            if vm.vsock.cid < 3:
                self.error(
                    f"{at}.vsock.cid",
                    "is reserved (0-2 belong to the hypervisor and the host)",
                    "use a number of 3 or more, unique on the host",
                    vm.vsock.cid,
                )
            if not caps.vsock:
                self.error(
                    f"{at}.vsock.cid",
                    f"{hv} has no vsock",
                    "remove vsock or use one of " + ", ".join(supporting("vsock")),
                )
        if not caps.user_and_credentials:
            if vm.user is not None:
                self.error(
                    f"{at}.user",
                    f"only qemu can drop privileges to a user; {hv} cannot",
                    'remove `user` or use hypervisor = "qemu"',
                    vm.user,
                )
            if vm.credential_files:
                self.error(
                    f"{at}.credentialFiles",
                    f"only qemu passes systemd credentials; {hv} cannot",
                    'remove credentialFiles or use hypervisor = "qemu"',
                )
        if vm.cpu is not None:
            if not caps.emulated_cpu:
                self.error(f"{at}.cpu", f"{hv} cannot emulate a CPU model", "remove `cpu`", vm.cpu)
            else:
                self.warn(
                    f"{at}.cpu",
                    "an emulated CPU model makes qemu run without KVM (TCG): much slower",
                    "leave `cpu` unset to run at native speed",
                    vm.cpu,
                )
        if vm.graphics is not None and vm.graphics.enable and not caps.graphics:
            self.error(
                f"{at}.graphics.enable",
                f"{hv} has no graphics",
                "use one of " + ", ".join(supporting("graphics")),
            )
        if vm.store_disk_type is not None and not vm.effective_store_on_disk():
            self.warn(
                f"{at}.storeDiskType",
                "has no effect: the guest has no store disk (the host store is shared)",
                "remove storeDiskType, or set storeOnDisk = true",
                vm.store_disk_type,
            )
        self._groups(vm, at)
        self._nixos(vm, at)
        self._unsafe_values(vm, at)

    def _sizes(self, vm: MicroVM, at: str, caps: Capabilities) -> None:
        hv = vm.hypervisor
        if vm.vcpu < 1:
            self.error(
                f"{at}.vcpu", "must be at least 1", "give the guest 1 or more vCPUs", vm.vcpu
            )
        if vm.mem < 1:
            self.error(f"{at}.mem", "must be a positive number of MiB", "use e.g. 512", vm.mem)
        elif vm.mem < 32:
            self.warn(
                f"{at}.mem", "is below 32 MiB: NixOS will not boot", "use 128 or more", vm.mem
            )
        if vm.mem == 2048 and hv == "qemu" and vm.system == "x86_64-linux":
            self.warn(
                f"{at}.mem",
                "exactly 2048 MiB hangs qemu on x86_64 (a known microvm.nix issue)",
                "use 2047 or 2049",
                vm.mem,
            )
        if vm.hotplug_mem < 0:
            self.error(
                f"{at}.hotplugMem", "cannot be negative", "use 0 or more MiB", vm.hotplug_mem
            )
        elif vm.hotplug_mem > 0:
            if not caps.mem_hotplug:
                self.error(
                    f"{at}.hotplugMem",
                    f"{hv} cannot hot-plug memory",
                    "remove hotplugMem or use one of " + ", ".join(supporting("mem_hotplug")),
                    vm.hotplug_mem,
                )
            elif hv == "qemu":
                machine = vm.qemu.machine if vm.qemu else None
                if machine in (None, "microvm") and vm.system == "x86_64-linux":
                    self.error(
                        f"{at}.hotplugMem",
                        "qemu's `microvm` machine (the x86_64 default) cannot hot-plug memory",
                        'set qemu.machine = "q35"',
                        vm.hotplug_mem,
                    )
        if vm.balloon and not caps.balloon:
            self.error(
                f"{at}.balloon",
                f"{hv} has no memory balloon",
                "remove balloon or use one of " + ", ".join(supporting("balloon")),
            )
        if vm.initial_balloon_mem and not caps.initial_balloon_mem:
            self.error(
                f"{at}.initialBalloonMem",
                f"only cloud-hypervisor takes initialBalloonMem; {hv} does not",
                "remove initialBalloonMem",
                vm.initial_balloon_mem,
            )
        if vm.initial_balloon_mem < 0:
            self.error(f"{at}.initialBalloonMem", "cannot be negative", "use 0 or more MiB")
        if vm.hugepage_mem and not caps.hugepage_mem:
            self.error(
                f"{at}.hugepageMem",
                f"only cloud-hypervisor backs memory with huge pages; {hv} does not",
                "remove hugepageMem",
            )

    def _unique(
        self, seen: dict[str, str], value: str, element: str, path: str, what: str, hint: str
    ) -> None:
        """Report ``value`` when an earlier element of the guest has it too.

        ``seen`` maps each value to the first element that has it
        (``interfaces[0]``); ``element`` is the one being checked.
        """
        if value in seen:
            self.error(path, f"is also the {what} of {seen[value]}", hint, value)
        seen.setdefault(value, element)

    def _interfaces(self, vm: MicroVM, at: str, caps: Capabilities) -> None:
        ids: dict[str, str] = {}
        macs: dict[str, str] = {}
        # MACs left to stable_mac (a hash, and hashlib costs 4 ms to import) are
        # worked out only where two interfaces could share one.
        resolved = vm.resolved_interfaces() if len(vm.interfaces) > 1 else vm.interfaces
        for i, iface in enumerate(vm.interfaces):
            p = f"{at}.interfaces[{i}]"
            if iface.type not in caps.interface_types:
                self.error(
                    f"{p}.type",
                    f"{vm.hypervisor} does not support {iface.type} interfaces",
                    "use one of " + ", ".join(sorted(caps.interface_types) or ["(none)"]),
                    iface.type,
                )
            if not iface.id:
                self.error(f"{p}.id", "is empty", "name the interface, e.g. vm-" + vm.name[:12])
            elif len(iface.id) > _IFNAME_MAX:
                self.error(
                    f"{p}.id",
                    f"is {len(iface.id)} characters; Linux interface names hold at most 15",
                    "use a shorter id",
                    iface.id,
                )
            elif iface.id.startswith("-") or _IFNAME_BAD.search(iface.id):
                # ip reads a leading '-' as an option, qemu's -netdev a ',' as the next one
                self.error(
                    f"{p}.id",
                    "is not a Linux interface name (a leading '-', or ',', '/', ':', blanks)",
                    "use letters, digits, '-' and '_', not starting with '-'",
                    iface.id,
                )
            element = f"interfaces[{i}]"
            self._unique(ids, iface.id, element, f"{p}.id", "id", "give every interface its own id")
            if iface.type == "bridge" and not iface.bridge:
                self.error(
                    f"{p}.bridge", "a bridge interface must name its bridge", 'set bridge = "br0"'
                )
            if iface.type != "bridge" and iface.bridge:
                self.error(
                    f"{p}.bridge",
                    f"only interfaces of type bridge take a bridge, this one is {iface.type}",
                    'remove bridge, or set type = "bridge"',
                    iface.bridge,
                )
            if iface.type == "macvtap" and iface.macvtap is None:
                self.error(
                    f"{p}.macvtap",
                    "a macvtap interface needs the host link it sits on",
                    'set macvtap = { link = "eth0"; mode = "bridge"; }',
                )
            if iface.type != "macvtap" and iface.macvtap is not None:
                self.error(f"{p}.macvtap", "is only for macvtap interfaces", "remove macvtap")
            if iface.mac is not None:
                self._mac(f"{p}.mac", iface.mac)
            mac = resolved[i].mac or ""
            if _MAC.match(mac):  # a malformed one is reported above
                self._unique(
                    macs,
                    mac.lower(),
                    element,
                    f"{p}.mac",
                    "MAC address",
                    "give every interface its own MAC address",
                )

    def _mac(self, path: str, mac: str) -> None:
        if not _MAC.match(mac):
            self.error(path, "is not a MAC address", "write six hex pairs: 02:00:00:00:00:01", mac)
        elif int(mac[:2], 16) & 1:
            self.error(
                path,
                "is a multicast address; a NIC needs a unicast one",
                "clear the lowest bit of the first octet (e.g. start with 02)",
                mac,
            )

    def _volumes(self, vm: MicroVM, at: str, caps: Capabilities) -> None:
        seen: dict[str, str] = {}
        for i, vol in enumerate(vm.volumes):
            p = f"{at}.volumes[{i}]"
            self._unique(
                seen,
                vol.image,
                f"volumes[{i}]",
                f"{p}.image",
                "image",
                "give every volume its own image file",
            )
            if not vol.image:
                self.error(f"{p}.image", "is empty", 'name the image file, e.g. "var.img"')
            elif vol.image.startswith("-"):
                self.error(
                    f"{p}.image",
                    "starts with '-', so a hypervisor or tool would read it as an option",
                    'name the file without a leading dash, or write "./-name"',
                    vol.image,
                )
            elif "," in vol.image:
                self.error(
                    f"{p}.image",
                    "contains ',', which qemu's -drive reads as the start of another option",
                    "name the image file without commas",
                    vol.image,
                )
            if vol.mount_point is not None and not vol.mount_point.startswith("/"):
                self.error(
                    f"{p}.mountPoint",
                    "must be an absolute path",
                    "start it with /",
                    vol.mount_point,
                )
            if vol.size <= 0 and vol.auto_create:
                self.error(
                    f"{p}.size", "must be a positive number of MiB", "use e.g. 256", vol.size
                )
            if vol.image_type not in caps.image_types:
                self.error(
                    f"{p}.imageType",
                    f"{vm.hypervisor} only takes raw images",
                    'use imageType = "raw", or hypervisor = "cloud-hypervisor"',
                    vol.image_type,
                )

    def _shares(self, vm: MicroVM, at: str, caps: Capabilities) -> None:
        tags: dict[str, str] = {}
        sockets: dict[str, int] = {}
        global_args = vm.virtiofsd.extra_args if vm.virtiofsd else ()
        for i, share in enumerate(vm.shares):
            p = f"{at}.shares[{i}]"
            if share.proto not in caps.share_protos:
                if not caps.share_protos:
                    hint = "remove the share: pass data through a volume instead"
                else:
                    hint = "use proto = " + " or ".join(f'"{s}"' for s in sorted(caps.share_protos))
                self.error(
                    f"{p}.proto",
                    f"{vm.hypervisor} cannot share folders over {share.proto}"
                    + ("" if caps.share_protos else " (it has no shares at all)"),
                    hint,
                    share.proto,
                )
            elif share.proto == "9p" and share.read_only and caps.ninep_read_write_only:
                self.error(
                    f"{p}.readOnly",
                    f"{vm.hypervisor} only has read-write 9p shares",
                    'set readOnly = false, or use proto = "virtiofs"',
                    share.read_only,
                )
            if not share.tag:
                self.error(f"{p}.tag", "is empty", "name the share")
            self._unique(
                tags, share.tag, f"shares[{i}]", f"{p}.tag", "tag", "give every share its own tag"
            )
            if not share.source:
                self.error(f"{p}.source", "is empty", "name the host folder to share")
            if not share.mount_point.startswith("/"):
                self.error(
                    f"{p}.mountPoint",
                    "must be an absolute path",
                    "start it with /",
                    share.mount_point,
                )
            if share.proto == "virtiofs":
                sock = _virtiofs_socket(vm, share)
                if sock in sockets:
                    self.error(
                        f"{p}.socket",
                        f"virtiofsd socket {sock!r} is also used by shares[{sockets[sock]}]",
                        "give each virtiofs share its own socket",
                        sock,
                    )
                sockets.setdefault(sock, i)
                translated = [
                    a for a in (*share.extra_args, *global_args) if a.startswith(_TRANSLATE_IDS)
                ]
                if share.posix_acl and translated:
                    self.error(
                        f"{p}.posixAcl",
                        "POSIX ACLs conflict with virtiofsd's uid/gid translation "
                        f"({', '.join(translated)})",
                        "set posixAcl = false, or drop the --translate-* arguments",
                    )

    def _forward_ports(self, vm: MicroVM, at: str, caps: Capabilities) -> None:
        if not vm.forward_ports:
            return
        has_user = any(i.type == "user" for i in vm.interfaces)
        if not caps.forward_ports or not has_user:
            self.error(
                f"{at}.forwardPorts",
                "forwarding ports needs qemu with a `user` interface"
                + ("" if caps.forward_ports else f"; this guest uses {vm.hypervisor}"),
                'use hypervisor = "qemu" and add Interface.user(), or reach the guest over tap',
            )
        for i, fwd in enumerate(vm.forward_ports):
            for side, end in (("host", fwd.host), ("guest", fwd.guest)):
                if not 0 <= end.port <= 65535:
                    self.error(
                        f"{at}.forwardPorts[{i}].{side}.port",
                        "is not a port number",
                        "use 0 to 65535",
                        end.port,
                    )

    def _groups(self, vm: MicroVM, at: str) -> None:
        groups = {
            "qemu": vm.qemu,
            "cloud-hypervisor": vm.cloud_hypervisor,
            "firecracker": vm.firecracker,
            "crosvm": vm.crosvm,
            "vfkit": vm.vfkit,
        }
        for name, group in groups.items():
            if group is not None and name != vm.hypervisor:
                self.warn(
                    f"{at}.{name}",
                    f"settings for {name} are ignored: this guest runs on {vm.hypervisor}",
                    f'remove them, or set hypervisor = "{name}"',
                )
        if vm.hypervisor == "vfkit":
            self.warn(
                f"{at}.hypervisor",
                "vfkit runs only on macOS hosts",
                "build and run this guest on a Mac (aarch64-darwin)",
                vm.hypervisor,
            )
        for key in vm.extra:
            # The option itself, a group above modelled options, or a path inside
            # a modelled option (a key of credentialFiles, …).
            covered = sorted(
                m
                for m in _modelled()
                if m == key or m.startswith(key + ".") or key.startswith(m + ".")
            )
            if covered:
                self.error(
                    keyed(f"{at}.extra", key),
                    f"microvm.{key} has its own field in the model",
                    f"set {covered[0]} directly instead of through extra",
                )
            else:
                try:
                    path = parse_attr_path(key)
                except NixgenError as err:
                    self.error(keyed(f"{at}.extra", key), err.message, err.hint or "")
                    continue
                self._microvm_option("guest", keyed(f"{at}.extra", key), path, vm.extra[key])

    def _microvm_option(self, side: Side, at: str, path: list[str], value: object) -> None:
        """A ``microvm.*`` name (``path`` below ``microvm``) and its value, against the schema."""
        for issue in self.schema.problems(side, path, value):
            hint = issue.hint
            other: Side = "host" if side == "guest" else "guest"
            if path and self.schema.unknown(side, path) and not self.schema.unknown(other, path):
                hint = (
                    f"microvm.{_attr_path(path)} belongs to microvm.nix's {other} module: "
                    f"set it on a {other}"
                )
            self.error(at, issue.message, hint)

    def _nixos(self, vm: MicroVM, at: str) -> None:
        for i, user in enumerate(vm.users):
            if not re.match(_USERNAME, user.name):
                self.error(
                    f"{at}.users[{i}].name",
                    "is not a valid user name",
                    "use lower-case letters, digits, - and _",
                    user.name,
                )
        if vm.allow_empty_root_password:
            self.warn(
                f"{at}.allowEmptyRootPassword",
                "root logs in with an empty password",
                "fine for a throw-away demo; give users SSH keys for anything else",
            )
        for i, pkg in enumerate(vm.packages):
            if isinstance(pkg, str) and not _ATTR_PATH.match(pkg):
                self.error(
                    f"{at}.packages[{i}]",
                    "is not a package attribute name of nixpkgs",
                    'write the attribute, e.g. "htop" or "python3Packages.requests"',
                    pkg,
                )
        self._free_settings(
            vm.nixos,
            f"{at}.nixos",
            "the guest's fields",
            "set the matching field of MicroVM (name, stateVersion, …) "
            "or use `extra` for other microvm options",
        )

    def _free_settings(
        self,
        settings: Mapping[str, object],
        at: str,
        owner: str,
        hint: str,
        own: tuple[str, ...] = _OWN_NIXOS_KEYS,
        side: Side = "guest",
    ) -> None:
        """Free NixOS settings must not reach what nixgen writes from fields;
        top-level names NixOS does not have are most likely typos."""
        for key, value in settings.items():
            try:
                path = parse_attr_path(key)
            except NixgenError as err:
                self.error(keyed(at, key), err.message, err.hint or "")
                continue
            refused = False
            for full in _leaf_paths(path, value):
                dotted = ".".join(full)
                for mine in own:
                    if dotted == mine or dotted.startswith(mine + "."):
                        self.error(keyed(at, key), f"{dotted} is set by nixgen from {owner}", hint)
                        refused = True
            if refused:
                continue
            if path[0] == "microvm":
                self._microvm_option(side, keyed(at, key), path[1:], value)
            elif path[0] not in NIXOS_NAMESPACES and path[0] not in _MODULE_KEYS:
                self._unknown_namespace(keyed(at, key), path[0])

    def _unknown_namespace(self, at: str, name: str) -> None:
        if not self.schema.unknown("guest", [name]):
            hint = f"microvm.nix has microvm.{name}: set that (a field of the guest, or extra)"
        elif (close := NIXOS_NAMESPACES.closest(name)) is not None:
            hint = f"did you mean {close}? (ignore this if a module you import declares {name})"
        else:
            hint = f"ignore this if a module you import declares {name}"
        self.warn(at, f"NixOS has no options under {name!r}", hint)

    def _unsafe_values(self, vm: MicroVM, at: str) -> None:
        """Values that would break the files, the runner's shell script or a login."""
        if vm.name in _RESERVED_NAMES:
            self.error(
                f"{at}.name",
                f"{vm.name!r} is reserved: packages.<system>.{vm.name} is the flake's "
                "default runner",
                "choose another name; `default` in nixgen.toml picks the default guest",
                vm.name,
            )
        for i, param in enumerate(vm.kernel_params):
            if not param or _WHITESPACE.search(param):
                self.error(
                    f"{at}.kernelParams[{i}]",
                    "a kernel parameter is one word: no spaces, tabs or newlines",
                    "give each parameter its own list entry: ['console=ttyS0', 'quiet']",
                    param,
                )
        for i, volume in enumerate(vm.volumes):
            if volume.image and not _SHELL_SAFE.match(volume.image):
                self.error(
                    f"{at}.volumes[{i}].image",
                    "has characters the runner's shell script would interpret "
                    "(microvm.nix pastes the name into it unquoted)",
                    "use letters, digits and . _ - + / @ % : , = only",
                    volume.image,
                )
        for i, module in enumerate(vm.modules):
            if isinstance(module, PurePosixPath) and _escapes(module):
                self.error(
                    f"{at}.modules[{i}]",
                    "leaves the project folder: a flake cannot read files outside it",
                    "put the module inside the project folder and give its path from there",
                    str(module),
                )
        for i, user in enumerate(vm.users):
            if user.hashed_password is not None and not re.match(_CRYPT_HASH, user.hashed_password):
                self.error(
                    f"{at}.users[{i}].hashedPassword",
                    "is not a crypt(3) hash; a clear password here would end up "
                    "world-readable in the Nix store",
                    "make a hash with `mkpasswd -m yescrypt` (or `!` to lock the password)",
                    "…" if user.hashed_password else "",
                )
            for j, key in enumerate(user.ssh_keys):
                problem = _ssh_key_problem(key)
                if problem is not None:
                    self.error(
                        f"{at}.users[{i}].sshKeys[{j}]",
                        problem,
                        "paste one line of your ~/.ssh/id_*.pub: ssh-ed25519 AAAA… comment",
                        key[:40],
                    )

    # ------------------------------------------------------------- the flake

    def flake(self, flake: Flake) -> None:
        names: dict[str, int] = {}
        cids: dict[int, str] = {}
        macs: dict[str, str] = {}
        host_ifaces: dict[str, str] = {}
        # MACs and host interface names clash only between two guests: one guest's
        # MACs are not worked out for this (see _interfaces).
        several = len(flake.guests) > 1
        if not flake.guests:
            self.warn("guests", "the flake has no guests", "add a MicroVM")
        for vm in flake.guests:
            if vm.name in names:
                self.error(
                    f"{keyed('guests', vm.name)}.name",
                    "two guests share this name",
                    "rename one of them",
                    vm.name,
                )
            names.setdefault(vm.name, 0)
            found, well_typed = _guest_problems(vm, self.schema)
            self.found.extend(found)
            if not well_typed:
                continue
            if vm.vsock is not None and vm.vsock.cid is not None:
                other = cids.get(vm.vsock.cid)
                if other is not None and other != vm.name:
                    self.error(
                        f"{keyed('guests', vm.name)}.vsock.cid",
                        f"guest {other!r} has the same vsock cid; a cid must be unique on the host",
                        "give each guest its own cid (3 or more)",
                        vm.vsock.cid,
                    )
                cids.setdefault(vm.vsock.cid, vm.name)
            for i, mac, host_iface in _addresses(vm) if several else ():
                self._unique_across(macs, mac, vm, i, "mac", "MAC address")
                if host_iface is not None:
                    self._unique_across(host_ifaces, host_iface, vm, i, "id", "host interface name")
        if flake.default is not None and flake.default not in names:
            self.error(
                "default",
                "names no guest of this flake",
                "use one of " + (", ".join(names) or "(no guests)"),
                flake.default,
            )
        self._inputs(flake)
        if flake.hosts:
            self._hosts(flake)

    # ------------------------------------------------------------- the hosts

    def _hosts(self, flake: Flake) -> None:
        guests = {g.name: g for g in flake.guests}
        runs_on: dict[str, str] = {}
        names: set[str] = set()
        well_typed = True
        for host in flake.hosts:
            at = keyed("hosts", host.name)
            if host.name in names:
                self.error(f"{at}.name", "two hosts share this name", "rename one of them")
            names.add(host.name)
            typed, ok = check_types(attrs.evolve(host, vms=(), networks=()), at)
            self.found.extend(typed)
            for vm in host.vms:
                typed, vm_ok = check_types(vm, keyed(f"{at}.vms", vm.name))
                self.found.extend(typed)
                ok = ok and vm_ok
            for net in host.networks:
                typed, net_ok = check_types(net, keyed(f"{at}.networks", net.name))
                self.found.extend(typed)
                ok = ok and net_ok
            if not ok:
                well_typed = False
                continue
            self.host(host, at, guests, runs_on)
        if well_typed:
            from nixgen.network import plan_networks  # (only flakes with hosts have networks)

            self.found.extend(plan_networks(flake).problems)

    def host(
        self, host: Host, at: str, guests: Mapping[str, MicroVM], runs_on: dict[str, str]
    ) -> None:
        if not _HOSTNAME.match(host.name):
            self.error(
                f"{at}.name",
                "is not a valid host name (RFC 1123 label)",
                "use 1 to 63 letters, digits and '-', not starting or ending with '-'",
                host.name,
            )
        if host.nixos_configuration and host.name in guests:
            self.error(
                f"{at}.nixosConfiguration",
                f"nixosConfigurations.{host.name} would be both this host and a guest",
                "rename the host or the guest",
            )
        seen: set[str] = set()
        for vm_entry in host.vms:
            p = keyed(f"{at}.vms", vm_entry.name)
            if vm_entry.name in seen:
                self.error(p, "is listed twice", "list each guest once", vm_entry.name)
                continue
            seen.add(vm_entry.name)
            vm = guests.get(vm_entry.name)
            if vm is None:
                self.error(
                    p,
                    "names no guest of this flake",
                    "use one of " + (", ".join(guests) or "(no guests)"),
                    vm_entry.name,
                )
                continue
            other = runs_on.get(vm.name)
            if other is not None:
                self.error(
                    p,
                    f"guest {vm.name!r} also runs on host {other!r}; "
                    "two hosts would start it with the same addresses and state",
                    "run each guest on one host",
                )
            runs_on.setdefault(vm.name, host.name)
            if vm.hypervisor in _HOST_ONLY_HYPERVISORS:
                self.error(
                    p,
                    f"guest {vm.name!r} runs on {vm.hypervisor}, which needs a macOS host; "
                    "microvm.nix's host module is for NixOS",
                    "use another hypervisor, or run the guest on a Mac",
                )
            elif vm.system != host.system:
                self.error(
                    p,
                    f"guest {vm.name!r} is built for {vm.system}, host {host.name!r} is "
                    f"{host.system}",
                    f'set system = "{host.system}" on the guest, or run it on a host of its system',
                )
            if vm_entry.mode == "config" and vm_entry.update_flake is not None:
                self.error(
                    f"{p}.updateFlake",
                    'a guest declared inline (mode = "config") cannot have an updateFlake',
                    'remove updateFlake, or use mode = "flake"',
                    vm_entry.update_flake,
                )
        for i, name in enumerate(host.autostart):
            p = f"{at}.autostart[{i}]"
            if name in seen:
                entry = host.vm(name)
                if entry.autostart:
                    self.warn(
                        p,
                        f"guest {name!r} is in vms and starts by itself",
                        "remove it from autostart",
                        name,
                    )
                else:
                    self.warn(
                        p,
                        f"guest {name!r} has autostart = false in vms, but is listed here",
                        f"set autostart on [hosts.{host.name}.vms.{name}] instead",
                        name,
                    )
        if host.state_dir is not None and not host.state_dir.startswith("/"):
            self.error(f"{at}.stateDir", "must be an absolute path", "start it with /")
        if host.target_host is not None:
            self._target_host(host.target_host, f"{at}.targetHost")
        self._module_paths(host.modules, f"{at}.modules")
        if not host.nixos_configuration:
            if host.target_host is not None:
                self.warn(
                    f"{at}.targetHost",
                    "is only used to deploy a full configuration",
                    "set nixosConfiguration = true, or remove targetHost",
                    host.target_host,
                )
            if host.modules:
                self.warn(
                    f"{at}.modules",
                    "only the full configuration (nixosConfigurations) imports these modules",
                    "set nixosConfiguration = true, or move them into nixos",
                )
        self._free_settings(
            host.nixos,
            f"{at}.nixos",
            "the host's fields",
            "use vms, autostart and stateDir for these microvm settings, and the full "
            "configuration (nixosConfiguration) for the host's name and stateVersion",
            own=_host_own_keys(host),
            side="host",
        )

    def _target_host(self, target: str, path: str) -> None:
        problem = ssh_destination_problem(target, path)
        if problem is not None:
            self.found.append(problem)

    def _module_paths(self, modules: Iterable[object], path: str) -> None:
        for i, module in enumerate(modules):
            if isinstance(module, PurePosixPath) and any(
                part.startswith("-") for part in module.parts
            ):
                self.error(
                    f"{path}[{i}]",
                    "has a part that starts with '-', which a command would read as an option",
                    "rename the file or folder without a leading dash",
                    str(module),
                )

    def _unique_across(
        self, seen: dict[str, str], value: str, vm: MicroVM, index: int, key: str, what: str
    ) -> None:
        """``value`` (the ``key`` of interface ``index`` of ``vm``) is no other guest's."""
        owner = seen.get(value)
        if owner is not None and owner != vm.name:
            self.error(
                f"{keyed('guests', vm.name)}.interfaces[{index}].{key}",
                f"guest {owner!r} has the same {what}",
                f"give each guest its own {what}",
                value,
            )
        seen.setdefault(value, vm.name)

    def _inputs(self, flake: Flake) -> None:
        names = [i.name for i in flake.inputs]
        for required in ("nixpkgs", "microvm"):
            if required not in names:
                self.error(
                    "inputs",
                    f"the flake needs a {required} input",
                    f"add Input(name={required!r}, url=…) or keep the default inputs",
                )
        for inp in flake.inputs:
            at = keyed("inputs", inp.name)
            if not _ATTR_PATH.match(inp.name) or "." in inp.name:
                self.error(
                    f"{at}.name", "is not a valid input name", "use letters, digits, - and _"
                )
            if not inp.url:
                self.error(
                    f"{at}.url", "is empty", 'give a flake reference, e.g. "github:owner/repo"'
                )
            for sub, target in inp.follows.items():
                if target.split("/")[0] not in names:
                    self.error(
                        keyed(f"{at}.follows", sub),
                        f"follows {target!r}, which is not an input of this flake",
                        "use one of " + ", ".join(names),
                        target,
                    )


def _escapes(module: PurePosixPath) -> bool:
    """Whether a relative module path climbs out of the project folder."""
    if module.is_absolute():
        return False
    depth = 0
    for part in module.parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part != ".":
            depth += 1
    return False


def _ssh_key_problem(key: str) -> str | None:
    """Why ``key`` is not one public-key line, or None."""
    if "\n" in key or "\r" in key:
        return "holds a line break: it would become two authorized_keys lines"
    fields = key.split()
    if not fields or fields[0] not in _SSH_KEY_TYPES:
        shown = fields[0] if fields else ""
        return f"does not start with an SSH key type such as ssh-ed25519 ({shown!r} is not one)"
    if len(fields) < 2 or not re.match(_BASE64, fields[1]):
        return "has no base64 key after its type"
    return None


def _leaf_paths(prefix: list[str], value: object) -> Iterable[list[str]]:
    """The attribute paths a (nested) free setting defines."""
    if isinstance(value, Mapping) and value:
        for key, inner in value.items():
            yield from _leaf_paths([*prefix, str(key)], inner)
    else:
        yield prefix


def _host_own_keys(host: Host) -> tuple[str, ...]:
    """The NixOS settings nixgen writes for a host from its fields."""
    own = ["networking.hostName", "system.stateVersion", "microvm.host.enable"]
    own += ["microvm.autostart", "microvm.stateDir"]
    own += [f"microvm.vms.{_attr_path([vm.name, f])}" for vm in host.vms for f in _HOST_VM_FIELDS]
    return tuple(own)


def _attr_path(parts: Iterable[str]) -> str:
    """Components back into a dotted key (quoting those that need it)."""
    return ".".join(p if _ATTR_PATH.match(p) and "." not in p else _quoted(p) for p in parts)


def _quoted(part: str) -> str:
    return '"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _virtiofs_socket(vm: MicroVM, share: Share) -> str:
    return share.socket or f"{vm.name}-virtiofs-{share.tag}.sock"


def _modelled_options(cls: type = MicroVM, prefix: str = "") -> frozenset[str]:
    """The dotted ``microvm.*`` option paths that model fields stand for.

    Option groups (``qemu``, ``vfkit.rosetta``: a field holding one model
    object) are followed to their leaves at any depth; lists of objects
    (``interfaces``) and tables (``credentialFiles``) are one option each.
    """
    out: set[str] = set()
    for info in describe(cls):
        if cls is MicroVM and info.name in NON_MICROVM_FIELDS:
            continue
        name = prefix + info.option
        group = group_class(info.type)
        if group is not None:
            out |= _modelled_options(group, name + ".")
        else:
            out.add(name)
    return frozenset(out)


@functools.cache
def _modelled() -> frozenset[str]:
    """:func:`_modelled_options` of a guest, worked out for the first key of ``extra``
    (describing every option group costs a project without one ~2 ms)."""
    return _modelled_options()


def _addresses(vm: MicroVM) -> tuple[tuple[int, str, str | None], ...]:
    """What of each interface must be unique on the host: (index, MAC in lower case,
    the host's interface name for tap and macvtap, which the host creates); remembered
    per guest object, as checking a flake after an edit of one guest asks it of all."""
    known = _ADDRESSES.get(vm)
    if known is None:
        known = tuple(
            (i, (iface.mac or "").lower(), iface.id if iface.type in ("tap", "macvtap") else None)
            for i, iface in enumerate(vm.resolved_interfaces())
        )
        _ADDRESSES.put(vm, known)
    return known


_ADDRESSES: ByIdentity[MicroVM, tuple[tuple[int, str, str | None], ...]] = ByIdentity()


def _guest_problems(vm: MicroVM, schema: Schema) -> tuple[tuple[Problem, ...], bool]:
    """The problems of one guest on its own, and whether its types are right.

    Remembered per guest object and schema (the model is immutable, a schema
    compares by identity): the flake editor checks the whole flake after each
    edit, and only the guests it changed are new objects.
    """
    known = _GUEST_PROBLEMS.get(vm)
    if known is not None and known[0] is schema:
        return known[1]
    found = _guest_problems_now(vm, schema)
    _GUEST_PROBLEMS.put(vm, (schema, found))
    return found


#: By identity, not equality: `MicroVM(vcpu=True) == MicroVM(vcpu=1)`, but
#: `vcpu = True` is a mistake that `vcpu = 1` is not.
_GUEST_PROBLEMS: ByIdentity[MicroVM, tuple[Schema, tuple[tuple[Problem, ...], bool]]] = ByIdentity()


def _guest_problems_now(vm: MicroVM, schema: Schema) -> tuple[tuple[Problem, ...], bool]:
    checker = _Checker(schema)
    at = keyed("guests", vm.name)
    typed, well_typed = check_types(vm, at)
    checker.found.extend(typed)
    if well_typed:  # rules would trip over wrong types: report those first
        checker.guest(vm, at)
    return tuple(checker.found), well_typed


def check(
    target: Flake | MicroVM | Iterable[MicroVM], *, schema: Schema | None = None
) -> list[Problem]:
    """Every problem (errors and warnings) of a flake, a guest or some guests.

    ``microvm.*`` names and values the model does not type itself are checked
    against ``schema`` (default: the one packaged with nixgen, see :mod:`nixgen.schema`).
    """
    flake = _as_flake(target)
    shape = _shape_problems(flake)
    if shape:
        return shape  # the rules need guests that are guests and hosts that are hosts
    checker = _Checker(schema or packaged_schema())
    checker.flake(flake)
    return checker.found


def type_errors(target: Flake | MicroVM | Iterable[MicroVM]) -> list[Problem]:
    """Only the problems of values of the wrong type: what stops rendering cold.

    :func:`nixgen.render.render_files` refuses a flake with any of these
    (``kernel_params="quiet"``, ``nixos={1: 2}``), whether or not it was validated.
    """
    flake = _as_flake(target)
    found = _shape_problems(flake)
    if found:
        return found
    for vm in flake.guests:
        found += check_types(vm, keyed("guests", vm.name))[0]
    for host in flake.hosts:
        found += check_types(host, keyed("hosts", host.name))[0]
    return [p for p in found if not p.warning]


def _as_flake(target: object) -> Flake:
    if isinstance(target, Flake):
        return target
    if isinstance(target, MicroVM):
        return Flake(guests=[target])
    if isinstance(target, Iterable) and not isinstance(target, str | bytes | Mapping):
        return Flake(guests=list(target))
    raise ValidationError(
        [
            Problem(
                path="(argument)",
                message=f"expected a Flake, a MicroVM or a list of MicroVMs, "
                f"got {type(target).__name__}",
                hint="pass Flake(guests=[MicroVM(name=...)])",
            )
        ]
    )


def _shape_problems(flake: Flake) -> list[Problem]:
    """Guests that are not MicroVMs, hosts that are not Hosts, flake-level types."""
    found: list[Problem] = []
    for field, cls in (("guests", MicroVM), ("hosts", Host)):
        items = getattr(flake, field)
        if not isinstance(items, tuple):
            found.append(
                Problem(
                    path=field,
                    message=f"expected a list of {cls.__name__}",
                    hint=f"write {field}=[{cls.__name__}(name=...)]",
                    value=items,
                )
            )
            continue
        for i, item in enumerate(items):
            if not isinstance(item, cls):
                found.append(
                    Problem(
                        path=f"{field}[{i}]",
                        message=f"expected a {cls.__name__}, got {type(item).__name__}",
                        hint=f"build it with {cls.__name__}(name=..., ...); data "
                        "(a dict) is read with nixgen.flake_from_dict",
                        value=item if isinstance(item, str | int | float) else None,
                    )
                )
    if found:
        return found
    return check_types(attrs.evolve(flake, guests=(), hosts=()), "")[0]


def ssh_destination_problem(target: str, path: str) -> Problem | None:
    """What is wrong with ``target`` as an ssh destination (``None``: nothing).

    ssh, ``nix copy --to ssh://…`` and nixos-rebuild all put it where an
    option may stand, so ``-oProxyCommand=…`` would run a local command.
    """
    if target.startswith("-"):
        return Problem(
            path=path,
            message="starts with '-', so ssh would read it as an option",
            hint="give an ssh destination: [user@]host (a Host alias of ssh_config for the rest)",
            value=target,
        )
    if not re.match(_SSH_DESTINATION, target):
        return Problem(
            path=path,
            message="is not an ssh destination [user@]host",
            hint="use user@host or host; put a port or other options in a Host entry of "
            "~/.ssh/config (or NIX_SSHOPTS) and give its alias here",
            value=target,
        )
    return None


def validate(
    target: Flake | MicroVM | Iterable[MicroVM],
    *,
    source: str | None = None,
    schema: Schema | None = None,
) -> list[Problem]:
    """Raise :class:`ValidationError` listing every error; return the warnings."""
    found = check(target, schema=schema)
    errors = [p for p in found if not p.warning]
    warnings = [p for p in found if p.warning]
    if errors:
        raise ValidationError(errors, source=source, warnings=warnings)
    return warnings


def interfaces_needing_host_setup(vm: MicroVM) -> list[Interface]:
    """The interfaces the host must create before the guest starts (tap, macvtap)."""
    return [i for i in vm.resolved_interfaces() if i.type in ("tap", "macvtap")]
