#!/usr/bin/env bash
# Run the test-suite with Debian 13's Nix 2.26 and QEMU 10.0 (the main suite,
# scripts/test.sh, runs with this machine's Nix, Debian 12's 2.8).
#
#   bash scripts/test-nix226.sh [PYTEST ARGS…]
#
# - Makes a Debian 13 (trixie) root once with debootstrap and installs nix-bin,
#   qemu-system-x86, python3, git and openssh there; cached outside the clone in
#   $NIXGEN_TRIXIE_ROOT (default /var/cache/nixgen/trixie, about 1.3 GB, a few
#   minutes to make; later runs reuse it). The mirror is the one apt uses here
#   ($NIXGEN_DEBIAN_MIRROR overrides it).
# - Runs pytest inside that root (chroot, in a private mount namespace so no
#   mount outlives the run): its own Nix 2.26 with its own store (the root's
#   /nix, never this machine's), its QEMU, its Python with a virtualenv in
#   .venv-nix226 of this clone. Only /proc, /dev, /dev/pts, /sys, this
#   machine's /etc/ssl/certs, the boot tests' guest image cache (made by
#   scripts/test.sh: run that first) and this clone are bound into the root.
# Needs root (debootstrap, chroot, mounts) and apt access to Debian's archive.
set -euo pipefail
cd "$(dirname "$0")/.."
clone=$PWD
root=${NIXGEN_TRIXIE_ROOT:-/var/cache/nixgen/trixie}
# The tests' tools, as scripts/test.sh installs them on this machine (graph
# pictures: graphviz, chromium and fonts, node for Mermaid; taps: iproute2; virtiofs shares: virtiofsd).
packages=(nix-bin qemu-system-x86 python3 python3-venv git ca-certificates openssh-client
  openssh-server graphviz chromium fonts-dejavu-core nodejs iproute2 virtiofsd)

# The boot tests' guest image (Debian 12's kernel and busybox, built by
# scripts/test.sh's run): shared, so that QEMU 10.0 boots the same guest.
guest_cache="${NIXGEN_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nixgen-tests}"
mkdir -p "$guest_cache"
guest_cache=$(cd "$guest_cache" && pwd)

if [ "$(id -u)" -ne 0 ]; then
  echo "test-nix226.sh: needs root (debootstrap, chroot and bind mounts); run it with sudo" >&2
  exit 2
fi

# The Debian mirror apt uses on this machine (the only archive reachable in CI).
debian_mirror() {
  if [ -n "${NIXGEN_DEBIAN_MIRROR:-}" ]; then echo "$NIXGEN_DEBIAN_MIRROR"; return; fi
  local found
  found=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -v '^\s*#' | grep -oE '(https?|file)://[^ ]*/debian/?' | grep -v security | head -n1 || true)
  echo "${found:-http://deb.debian.org/debian}"
}

# in_root DIR CMD…: run CMD (a shell command) in DIR with the bind mounts, in a
# mount namespace of its own: the mounts end with the command.
in_root() {
  local dir=$1; shift
  # The root a mount point of its own, so that unshare works inside it too
  # (the deploy tests give each sshd a private mount namespace).
  local binds="mount --bind '$dir' '$dir' && mount --bind /proc '$dir/proc'"
  binds+=" && mount --rbind /dev '$dir/dev'"
  binds+=" && mount --bind /sys '$dir/sys'"
  # This machine's trusted certificates (a proxy's CA, say) for pip, beside
  # the root's own (whose ca-certificates package apt keeps up to date).
  binds+=" && mkdir -p '$dir/etc/nixgen-host-certs'"
  binds+=" && mount --bind -o ro /etc/ssl/certs '$dir/etc/nixgen-host-certs'"
  binds+=" && mkdir -p '$dir$clone' && mount --bind '$clone' '$dir$clone'"
  binds+=" && mkdir -p '$dir$guest_cache' && mount --bind '$guest_cache' '$dir$guest_cache'"
  unshare --mount --propagation private -- sh -c "$binds && exec chroot '$dir' /bin/sh -c \"\$1\"" \
    in_root "$*"
}

prepare_root() {
  [ -e "$root/.nixgen-root-ready" ] && return 0
  local partial=$root.partial
  if [ ! -e "$partial/.nixgen-debootstrapped" ]; then
    command -v debootstrap >/dev/null || {
      echo "test-nix226.sh: installing debootstrap with apt-get" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq debootstrap >/dev/null
    }
    rm -rf "$partial" && mkdir -p "$(dirname "$partial")"
    local mirror
    mirror=$(debian_mirror)
    echo "test-nix226.sh: making a Debian 13 root in $root from $mirror (once; a few minutes)" >&2
    debootstrap --variant=minbase trixie "$partial" "$mirror" >"$partial.log" 2>&1 || {
      tail -n 20 "$partial.log" >&2
      echo "test-nix226.sh: debootstrap failed (log: $partial.log)" >&2
      exit 1
    }
    touch "$partial/.nixgen-debootstrapped"
  fi
  cp /etc/resolv.conf "$partial/etc/resolv.conf"
  # debootstrap's --include cannot resolve nix-bin's virtual dependency: apt can.
  in_root "$partial" "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends ${packages[*]} >/dev/null"
  touch "$partial/.nixgen-root-ready"
  mv "$partial" "$root"
}
# One run at a time makes or changes the root (several clones on one machine
# share it): a second run waits here, then finds it ready.
mkdir -p "$(dirname "$root")"
exec 9>"$root.lock"
flock 9
prepare_root
cp /etc/resolv.conf "$root/etc/resolv.conf"
# A root made before the package list grew gets what it now misses (once).
if [ "$(cat "$root/.nixgen-packages" 2>/dev/null)" != "${packages[*]}" ]; then
  in_root "$root" "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends ${packages[*]} >/dev/null"
  echo "${packages[*]}" >"$root/.nixgen-packages"
fi
exec 9>&-  # (the lock ends here: pytest below does not hold it)

# Nix offline, as root, no daemon: the same settings as scripts/test.sh, in the
# root's own /etc (never this machine's).
mkdir -p "$root/etc/nixgen-test-nix-conf"
cat >"$root/etc/nixgen-test-nix-conf/nix.conf" <<'CONF'
build-users-group =
sandbox = false
substituters =
experimental-features = nix-command flakes
flake-registry =
download-attempts = 1
CONF

quoted_args=""
for arg in "$@"; do quoted_args+=" '${arg//\'/\'\\\'\'}'"; done

in_root "$root" "set -e
  cd '$clone'
  export PIP_CERT=/etc/nixgen-host-certs/ca-certificates.crt SSL_CERT_FILE=/etc/nixgen-host-certs/ca-certificates.crt
  [ -x .venv-nix226/bin/python ] || python3 -m venv .venv-nix226
  .venv-nix226/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
  export NIX_CONF_DIR=/etc/nixgen-test-nix-conf NIXGEN_TEST_CACHE='$guest_cache'
  export HOME=/root TMPDIR=/tmp PATH=\"$clone/.venv-nix226/bin:/usr/sbin:/usr/bin:/sbin:/bin\"
  echo \"== pytest with \$(nix --version), \$(qemu-system-x86_64 --version | head -n1)\"
  exec python -m pytest -p no:cacheprovider $quoted_args"
