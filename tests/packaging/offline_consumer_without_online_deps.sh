#!/usr/bin/env bash
# An offline-only consumer builds and runs on a machine with no libcurl, OpenSSL
# or nlohmann_json headers or CMake packages, from the full installed package.
#
#   offline_consumer_without_online_deps.sh CONSUMER_SOURCE WORK STAGE CXX STD GENERATOR
#
# The machine without them is this one, in a private mount namespace where an
# empty tmpfs hides every directory that holds them. The script first proves
# they are gone (the compiler cannot include them, CMake cannot find them),
# then configures, builds and runs the consumer there, and checks that asking
# for the online component fails there naming the missing dependency.
# Needs root for the mount namespace; exits 77 (skipped) without it.
set -euo pipefail
consumer=$1 work=$2 stage=$3 cxx=$4 std=$5 generator=$6

if [ -z "${MODELRES_IN_NAMESPACE:-}" ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null; then
    echo "skipped: needs root and unshare for a private mount namespace (CI runs as root)"
    exit 77
  fi
  MODELRES_IN_NAMESPACE=1 exec unshare --mount --propagation private "$0" "$@"
fi

hidden=(/usr/include/curl /usr/include/openssl /usr/include/nlohmann
        /usr/include/x86_64-linux-gnu/curl /usr/include/x86_64-linux-gnu/openssl
        /usr/include/aarch64-linux-gnu/curl /usr/include/aarch64-linux-gnu/openssl
        /usr/share/cmake/nlohmann_json /usr/lib/cmake/nlohmann_json
        /usr/lib/x86_64-linux-gnu/cmake/nlohmann_json /usr/lib/aarch64-linux-gnu/cmake/nlohmann_json)
for d in "${hidden[@]}"; do
  [ -d "$d" ] && mount -t tmpfs -o ro,size=4k modelres-hidden "$d"
done

# Proof that the online dependencies are gone for the compiler and for CMake.
for header in curl/curl.h openssl/sha.h nlohmann/json.hpp; do
  if echo "#include <$header>" | "$cxx" -std=c++"$std" -fsyntax-only -x c++ - 2>/dev/null; then
    echo "FAIL: <$header> is still visible; hide its directory too" >&2
    exit 1
  fi
done
probe=$work/probe
rm -rf "$probe" && mkdir -p "$probe"
cat > "$probe/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.14)
project(probe LANGUAGES CXX)
find_package(CURL QUIET)
find_package(OpenSSL QUIET)
find_package(nlohmann_json CONFIG QUIET)
if(CURL_FOUND OR OPENSSL_FOUND OR nlohmann_json_FOUND)
  message(FATAL_ERROR "still found: CURL=${CURL_FOUND} OpenSSL=${OPENSSL_FOUND} nlohmann_json=${nlohmann_json_FOUND}")
endif()
CMAKE
cmake -S "$probe" -B "$probe/build" -G "$generator" -DCMAKE_CXX_COMPILER="$cxx" > "$probe/log" 2>&1 \
  || { cat "$probe/log"; echo "FAIL: CMake still finds an online dependency" >&2; exit 1; }
echo "hidden: libcurl, OpenSSL and nlohmann_json headers and CMake packages"

# The offline consumer: configures, builds, and its tests pass.
build=$work/offline
rm -rf "$build"
cmake -S "$consumer" -B "$build" -G "$generator" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_STANDARD="$std" \
  -DCMAKE_PREFIX_PATH="$stage"
cmake --build "$build"
(cd "$build" && ctest --output-on-failure)

# Asking for the online component there fails at configure time, naming what is missing.
build=$work/online
rm -rf "$build"
if cmake -S "$consumer" -B "$build" -G "$generator" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_STANDARD="$std" \
     -DCMAKE_PREFIX_PATH="$stage" -DMODELRES_CONSUMER_ONLINE=ON > "$work/online.log" 2>&1; then
  echo "FAIL: find_package(modelres COMPONENTS curl) succeeded without its dependencies" >&2
  exit 1
fi
grep -q 'nlohmann_json.*could not be found\|provided by "nlohmann_json"' "$work/online.log" \
  || { cat "$work/online.log"; echo "FAIL: the configure error does not name nlohmann_json" >&2; exit 1; }
echo "offline consumer built and ran without the online dependencies; COMPONENTS curl failed naming nlohmann_json"
