#!/usr/bin/env bash
# Installs (as root, with apt-get) or names (otherwise) the Debian packages a
# target needs. Usage: scripts/deps.sh test|bench|all
set -euo pipefail

test_pkgs="build-essential pkg-config libcmocka-dev python3 valgrind clang libclang-rt-14-dev llvm cppcheck clang-format"
bench_pkgs="g++ time libbenchmark-dev libhwloc-dev hwloc libjemalloc-dev libjemalloc2 libmimalloc-dev libmimalloc2.0 libtcmalloc-minimal4 gnuplot-nox linux-perf"

case "${1:-all}" in
  test) want="$test_pkgs" ;;
  bench) want="$test_pkgs $bench_pkgs" ;;
  all) want="$test_pkgs $bench_pkgs" ;;
  *) echo "usage: $0 test|bench|all" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -qq $missing >/dev/null
else
  echo "missing Debian packages:$missing" >&2
  echo "install them with: sudo apt-get install -y$missing" >&2
  exit 1
fi
