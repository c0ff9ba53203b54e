#!/usr/bin/env bash
# Fetch promtool and amtool (the unit tier's alert-rule tests) from Debian bookworm's prometheus and
# prometheus-alertmanager packages, without installing them: `apt-get download` with a private apt configuration
# (the machine's apt sources are not touched), `dpkg-deb -x`, and the two binaries kept in
#   ${HELIOGRID_CACHE}/promtool-<version>/{promtool,amtool}
# No service is installed or started on this machine. Safe to re-run: nothing happens when they are there.
# Needs no root. Run by `make setup` (the `host` target); the unit test says so when it has not run.
set -euo pipefail
# The upstream release of bookworm's prometheus; tests/unit/test_alert_rules.py reads it here. Debian's revision is
# not pinned (a security update replaces it on the mirror); a package of another release is refused.
PROMETHEUS_VERSION=2.42.0
CACHE=${HELIOGRID_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/heliogrid}
dir="$CACHE/promtool-${PROMETHEUS_VERSION}"
if [ -x "$dir/promtool" ] && [ -x "$dir/amtool" ]; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
echo "deb ${DEBIAN_MIRROR:-http://deb.debian.org/debian} bookworm main" > "$work/sources.list"
echo "deb ${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security} bookworm-security main" >> "$work/sources.list"
echo "deb ${DEBIAN_MIRROR:-http://deb.debian.org/debian} bookworm-updates main" >> "$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Debug::NoLocking=1
          -o APT::Sandbox::User="$(id -un)" -o APT::Architecture="$(dpkg --print-architecture)")
echo "fetch-promtool: fetching prometheus $PROMETHEUS_VERSION and prometheus-alertmanager (Debian bookworm)"
apt-get "${apt_opts[@]}" -q update >/dev/null
(cd "$work" && apt-get "${apt_opts[@]}" -q download prometheus prometheus-alertmanager >/dev/null)
deb=$(ls "$work"/prometheus_*.deb)
case "$(dpkg-deb -f "$deb" Version)" in
  "$PROMETHEUS_VERSION"+*) ;;
  *) echo "fetch-promtool: bookworm's prometheus is $(dpkg-deb -f "$deb" Version), expected $PROMETHEUS_VERSION+...;" \
       "update PROMETHEUS_VERSION in $0 after checking the rule tests with it" >&2; exit 1 ;;
esac
dpkg-deb -x "$work"/prometheus_*.deb "$work/x"
dpkg-deb -x "$work"/prometheus-alertmanager_*.deb "$work/x"
mkdir -p "$dir"
for tool in promtool amtool; do
  install -m 0755 "$work/x/usr/bin/$tool" "$dir/$tool.tmp" && mv "$dir/$tool.tmp" "$dir/$tool"
done
echo "fetch-promtool: $("$dir/promtool" --version 2>&1 | head -n 1) in $dir"
