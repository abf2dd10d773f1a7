#!/usr/bin/env bash
# Installs the Debian 12 packages that converge needs to build, test and run.
# Safe to run again: apt-get skips what is already installed.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config clang
  libabsl-dev libtbb-dev libconcurrentqueue-dev
  libbenchmark-dev libgtest-dev libgmock-dev
  libcurl4-openssl-dev libsnappy-dev libsimdjson-dev
  protobuf-compiler libprotobuf-dev
  libcpp-httplib-dev libspdlog-dev libfmt-dev libxxhash-dev
  prometheus-cpp-dev
  victoria-metrics prometheus python3-prometheus-client curl ca-certificates
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]}; run this script as root" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
