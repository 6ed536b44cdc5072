#!/usr/bin/env bash
# Installs what scripts/train/ needs on Debian 12: python3-torch (1.13, for /usr/bin/python3 only),
# python3-numpy, and OpenBLAS (Debian's default reference BLAS makes torch matmuls ~13x slower:
# ~3.7 vs ~50 GFLOP/s measured on this machine's CPUs). Idempotent: installs nothing when all are
# present. Called by scripts/train/train.py when torch is missing; never by npm test or npm start.
set -euo pipefail

PKGS=(python3-torch python3-numpy libopenblas0-pthread)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "train/setup: ${PKGS[*]} already installed"
  exit 0
fi
if [[ ! -f /etc/debian_version ]]; then
  echo "train/setup: not a Debian machine; install PyTorch, numpy and OpenBLAS for python3 yourself" >&2
  exit 1
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "train/setup: need root to apt-get install ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "train/setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
