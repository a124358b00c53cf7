#!/bin/sh
# Creates one macvtap interface for a guest, as microvm.nix's bin/macvtap-up
# does under its host module (microvm-macvtap-interfaces@NAME), but for the
# user nixgen runs as rather than the host module's `microvm` user.
# nixgen's guest supervisor runs it before the hypervisor starts:
#
#   macvtap-up.sh IP ID MAC LINK MODE [UID]
#
# IP: the ip command (iproute2); UID: hand the interface's /dev/tap<ifindex>,
# which the runner opens, to this user (not needed when the runner is root).
set -eu
ip=$1 id=$2 mac=$3 link=$4 mode=$5 uid=${6:-}
"$ip" link add link "$link" name "$id" address "$mac" type macvtap mode "$mode"
"$ip" link set "$id" allmulticast on
# The host's side of the guest's NIC needs no IPv6 address of its own.
knob=/proc/sys/net/ipv6/conf/$id/disable_ipv6
if [ -f "$knob" ]; then
  echo 1 >"$knob"
fi
"$ip" link set "$id" up
if [ -n "$uid" ]; then
  index=$("$ip" -o link show "$id" | cut -d: -f1)
  chown "$uid" "/dev/tap$index"
fi
