#!/usr/bin/env bash
# Install what the tests need on a fresh Debian machine, then run them all:
# ruff, mypy --strict and pytest (the real-Nix tests included).
#
# - Debian's nix-bin (Nix 2.8), qemu-system-x86 (with QEMU's virtiofsd), iproute2,
#   OpenSSH, graphviz and chromium via apt when missing (needs root or sudo);
# - a virtualenv in .venv with nixgen and its test dependencies;
# - Nix configured for offline use through NIX_CONF_DIR (nothing is written to /etc).
set -euo pipefail
cd "$(dirname "$0")/.."

# apt-get that waits while another apt or dpkg (an unattended upgrade, someone's
# install) holds the dpkg lock, instead of failing at once; SUDO: "" or "sudo".
apt_get() {
  local sudo=$1
  shift
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 "$@"
}
# `apt-get update` does not wait for the package lists' lock (nor does a flaky
# mirror wait for us): tried again, 6 times at most.
apt_update() {
  local try
  for try in 1 2 3 4 5 6; do
    apt_get "$1" update -qq && return 0
    [ "$try" -lt 6 ] && sleep 10
  done
  return 1
}

apt_install() {
  local missing=()
  command -v nix >/dev/null || missing+=(nix-bin)
  command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
  # deploy's and the runtime's tests over real ssh start their own sshd on 127.0.0.1
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v ssh >/dev/null || missing+=(openssh-client)
  # runtime tests: taps in a network namespace
  command -v ip >/dev/null || missing+=(iproute2)
  # nixgen graph: Graphviz lays the SVG/PNG out, a headless chromium looks at it, both
  # measuring text in DejaVu Sans (the font the pictures name).
  command -v dot >/dev/null || missing+=(graphviz)
  command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
  [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
      echo "test.sh: ${missing[*]} missing and not root: the tests that need them will skip" >&2
      return 0
    fi
  fi
  echo "test.sh: installing ${missing[*]} with apt-get" >&2
  apt_update "$sudo"
  apt_get "$sudo" install -y -qq "${missing[@]}" >/dev/null
}
apt_install

# The boot tests download Debian's current kernel package: with stale package
# lists (the archive drops superseded kernels) the download fails and they skip.
guest_cache="${NIXGEN_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nixgen-tests}"
if ! compgen -G "$guest_cache/debs/linux-image-*.deb" >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then apt_update "" || true
  elif command -v sudo >/dev/null; then apt_update sudo || true; fi
fi

# The Mermaid text of `nixgen graph` is drawn by Mermaid itself in the browser tests:
# its browser bundle from npm (the package alone, no dependencies) into the test cache.
mermaid_dir="$guest_cache/mermaid"
if [ ! -f "$mermaid_dir/package/dist/mermaid.min.js" ] && command -v npm >/dev/null; then
  mkdir -p "$mermaid_dir"
  if tarball=$(cd "$mermaid_dir" && npm pack --silent mermaid@11 2>/dev/null | tail -n 1) &&
    tar -xzf "$mermaid_dir/$tarball" -C "$mermaid_dir" package/dist/mermaid.min.js; then
    rm -f "$mermaid_dir/$tarball"
  else
    echo "test.sh: could not fetch mermaid from npm: the Mermaid drawing tests will skip" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

# Nix offline, as root, no daemon, without touching /etc (see docs/development.md).
export NIX_CONF_DIR="${NIX_CONF_DIR:-$PWD/.nixgen/test-nix-conf}"
mkdir -p "$NIX_CONF_DIR"
cat > "$NIX_CONF_DIR/nix.conf" <<'CONF'
build-users-group =
sandbox = false
substituters =
experimental-features = nix-command flakes
flake-registry =
download-attempts = 1
CONF

export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff" && ruff check nixgen tests benchmarks && ruff format --check nixgen tests benchmarks
echo "== mypy" && mypy
echo "== pytest" && python -m pytest "$@"
