#!/usr/bin/env bash
# scripts/install_deps.sh: install the Debian packages Polyhead builds with (run as root).
#   --bench   also PyTorch (python3-torch) for the anchor benchmark and fixture regeneration
set -euo pipefail
pkgs=(cmake g++ make libtbb-dev libopenblas-dev doctest-dev libstb-dev nlohmann-json3-dev libcli11-dev zlib1g-dev clang libclang-rt-dev)
[[ "${1:-}" == "--bench" ]] && pkgs+=(python3-torch)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "install_deps: installing ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install_deps: all build dependencies present"
