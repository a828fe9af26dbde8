#!/usr/bin/env bash
# Installs the Debian 12 packages sluice needs to build, test and benchmark.
# Idempotent: when every package is already installed it returns in well under a second.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates
  libboost1.81-dev libssl-dev openssl libmimalloc-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev
  curl nginx-light wrk
  clang-format clang-tidy
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
