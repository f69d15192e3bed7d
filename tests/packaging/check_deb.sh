#!/usr/bin/env bash
# Checks the .deb of the modelres program as a user meets it: its fields and
# files, then installs it with apt-get, runs `modelres --version`, an offline
# resolve and an online one (through modelres-online) from /usr/bin, and
# removes it again (unless it was installed before).
#
#   tests/packaging/check_deb.sh path/to/modelres_VERSION_ARCH.deb
set -euo pipefail
deb=$(realpath "$1")
cd "$(dirname "$0")/../.."
version=$(sed -nE 's/^#define MODELRES_VERSION_STRING "(.*)"$/\1/p' include/modelres/version.hpp)

fail() { echo "FAIL: $*" >&2; exit 1; }
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = modelres ] || fail "Package is '$(field Package)'"
[ "$(field Version)" = "$version" ] || fail "Version is '$(field Version)', version.hpp says $version"
depends=$(field Depends | tr ',|' '\n\n' | awk '{print $1}')
for dep in libcurl4 libssl3 libstdc++6 libc6; do
  grep -qxF "$dep" <<<"$depends" || fail "Depends lacks $dep: $(field Depends)"
done
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/modelres ./usr/bin/modelres-online ./usr/share/doc/modelres/copyright ./usr/share/doc/modelres/cli.md; do
  grep -qx "$f" <<<"$contents" || fail "$f is not in the package"
done
grep -q '^./usr/include\|^./usr/share/cmake' <<<"$contents" && fail "the program's package carries library files"

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
was_installed=$(dpkg-query -W -f='${Status}' modelres 2>/dev/null | grep -c "install ok installed" || true)
cache=$(mktemp -d)
trap 'if [ "$was_installed" = 0 ]; then $sudo dpkg -r modelres >/dev/null; fi; rm -rf "$cache"' EXIT
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$deb" >/dev/null

[ "$(/usr/bin/modelres --version)" = "modelres $version" ] || fail "modelres --version says '$(/usr/bin/modelres --version)'"
mkdir -p "$cache/models/acme/tiny" && echo '{}' > "$cache/models/acme/tiny/config.json"
out=$(/usr/bin/modelres resolve acme/tiny --local-only --cache-dir "$cache")
[ "$out" = "$cache/models/acme/tiny" ] || fail "offline resolve printed '$out'"
rc=0
MODELRES_OFFLINE=1 /usr/bin/modelres resolve acme/absent --cache-dir "$cache" 2>/dev/null || rc=$?
[ "$rc" = 4 ] || fail "a model never cached exited $rc, not 4 (not found)"
# An online resolve goes through modelres-online: the hub out of reach, the cached copy is served, said so.
err=$(/usr/bin/modelres resolve acme/tiny --cache-dir "$cache" --endpoint http://127.0.0.1:9 2>&1 >/dev/null) \
  || fail "an online resolve with the hub out of reach failed: $err"
grep -q "the hub could not be asked" <<<"$err" || fail "an online resolve did not reach modelres-online: '$err'"
echo "deb: modelres $version installed with apt-get; --version, an offline and an online resolve ran from /usr/bin"
