#!/usr/bin/env bash
# Sets up a fresh Debian machine and runs the demo or the tests.
#
#   tools/dev.sh demo    install what is missing, build, run the demo
#   tools/dev.sh test    install what is missing, build and test every CI variant:
#                        g++ and clang, C++17 and C++20, -fno-exceptions, ASan+UBSan,
#                        short fuzzing runs of the pickle, JSON, Hugging Face API and lock file readers, and the .deb of
#                        the program, installed with apt-get and run
#   tools/dev.sh deps    only install what is missing
#
# Build trees go to build/<variant>. Packages come from Debian's archive only.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ clang libclang-rt-dev cmake ninja-build binutils pkg-config make python3
          libboost-dev nlohmann-json3-dev catch2 libcli11-dev libbenchmark-dev
          libcurl4-openssl-dev libssl-dev libcpp-httplib-dev curl openssl
          dpkg-dev file
          nginx-light     # the large-file benchmark's server; the pull-through mirror of docs/deployment.md
          tinyproxy-bin)  # the forward proxy of docs/deployment.md (the binary only, no service)

deps() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# build NAME CXX STD [cmake args...]: configure and build one variant.
build() {
  local name=$1 cxx=$2 std=$3
  shift 3
  # -g1: line tables only. A failure (and ASan's report) still names file and
  # line; full debug info for the tests' templates cost a quarter of the build.
  cmake -S . -B "build/$name" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_STANDARD="$std" \
        -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 "$@" > "build/$name.configure.log" 2>&1 \
    || { cat "build/$name.configure.log"; return 1; }
  cmake --build "build/$name"
}

passed=0
failed=0
# variant NAME CXX STD [cmake args...]: build one variant and run its tests.
variant() {
  local name=$1
  echo "=== $name"
  build "$@"
  local log="build/$name.ctest.log" rc=0
  (cd "build/$name" && ctest --output-on-failure -j2) 2>&1 | tee "$log" || rc=$?
  # ctest: "100% tests passed, 0 tests failed out of 58"
  local line total bad
  line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -n 1)
  total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
  bad=$(sed -E 's/.*passed, ([0-9]+) tests failed.*/\1/' <<<"$line")
  passed=$((passed + ${total:-0} - ${bad:-0}))
  failed=$((failed + ${bad:-1}))
  return $rc
}

# fuzz NAME CORPUS...: 30 seconds of libFuzzer+ASan+UBSan on tests/fuzz/NAME_fuzzer.cpp.
fuzz() {
  local name=$1
  shift
  echo "=== fuzz: $name reader, 30 seconds"
  mkdir -p "build/fuzz/$name-corpus"
  clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude \
    "tests/fuzz/${name}_fuzzer.cpp" -o "build/fuzz/${name}_fuzzer"
  cp "$@" "build/fuzz/$name-corpus/"
  local log="build/fuzz/$name.log"
  # A crash's cause is printed above libFuzzer's stats; show it, and the input, or CI says only "deadly signal".
  if ! (cd build/fuzz && "./${name}_fuzzer" -max_total_time=30 -max_len=4096 -print_final_stats=1 \
        -artifact_prefix="$name-" "$name-corpus" > "$name.log" 2>&1); then
    grep -m1 -A40 -E "ERROR|runtime error|terminate called" "$log" || tail -60 "$log"
    for crash in build/fuzz/"$name"-crash-* build/fuzz/"$name"-leak-* build/fuzz/"$name"-timeout-*; do
      [ -f "$crash" ] && { echo "input $crash:"; od -A d -t x1z "$crash" | head -40; }
    done
    return 1
  fi
  tail -12 "$log"
}

mkdir -p build
case "${1:-}" in
  deps)
    deps
    ;;
  demo)
    deps
    build demo c++ 17 -DMODELRES_BUILD_TESTS=OFF -DMODELRES_BUILD_BENCHMARKS=OFF > build/demo.build.log 2>&1 \
      || { cat build/demo.build.log; exit 1; }
    build/demo/tools/modelres-demo
    ;;
  test)
    deps
    sanitize="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
    variant gcc-cxx17 g++ 17
    variant clang-cxx20 clang++ 20
    variant gcc-cxx20 g++ 20 -DMODELRES_BUILD_BENCHMARKS=OFF -DMODELRES_INSTALL=OFF
    variant clang-cxx17 clang++ 17 -DMODELRES_BUILD_BENCHMARKS=OFF -DMODELRES_INSTALL=OFF
    variant gcc-noexceptions g++ 17 -DMODELRES_NO_EXCEPTIONS=ON -DMODELRES_BUILD_BENCHMARKS=OFF -DMODELRES_INSTALL=OFF
    variant clang-asan-ubsan clang++ 17 -DMODELRES_BUILD_BENCHMARKS=OFF -DMODELRES_INSTALL=OFF \
      "-DCMAKE_CXX_FLAGS=$sanitize" "-DCMAKE_EXE_LINKER_FLAGS=$sanitize"
    echo "=== benchmarks: smoke run"
    build/gcc-cxx17/benchmarks/modelres_benchmarks --benchmark_filter='/models:1$' --benchmark_min_time=0.05
    # The download rows have fixed iterations: one pass of each, about 30 s, so the curl and
    # openssl references are known to run on a fresh machine too.
    build/gcc-cxx17/benchmarks/modelres_download_benchmarks --benchmark_min_time=0.05
    build/gcc-cxx17/benchmarks/modelres_process_benchmarks --benchmark_min_time=0.05
    MODELRES_BENCH_FILE_MIB=128 build/gcc-cxx17/benchmarks/modelres_segmented_benchmarks
    fuzz pickle tests/fixtures/pickles/*.pkl
    fuzz json tests/fixtures/json/*.json
    fuzz hf_hub tests/fixtures/hf_api/*
    fuzz lock tests/fixtures/lock/*.lock
    echo "=== deb: the modelres program as a .deb, installed with apt-get and run"
    build deb g++ 17 -DCMAKE_BUILD_TYPE=Release -DMODELRES_BUILD_TESTS=OFF -DMODELRES_BUILD_BENCHMARKS=OFF \
      -DMODELRES_BUILD_DEMO=OFF
    rm -f build/deb/modelres_*.deb
    (cd build/deb && cpack -G DEB > ../deb.cpack.log 2>&1) || { cat build/deb.cpack.log; exit 1; }
    tests/packaging/check_deb.sh build/deb/modelres_*.deb
    echo "=== all variants passed"
    echo "tests: $passed passed, $failed failed"
    ;;
  *)
    echo "usage: tools/dev.sh demo|test|deps" >&2
    exit 2
    ;;
esac
