#!/usr/bin/env bash
# Installs the system pieces the test suite needs on a Debian 12 machine with no GPU:
#   - Mesa lavapipe 25 (software Vulkan with shader-f16) from bookworm-backports, the adapter
#     dawn.node picks by default;
#   - Debian's chromium, which ships SwiftShader (software Vulkan without shader-f16) and is
#     the browser the end-to-end test drives.
# It does nothing when both are already present. Needs root (or sudo) only when installing.
set -euo pipefail

have_lavapipe() {
  # lavapipe 25 registers lvp_icd.json; Debian 12's stock 22.3 is too old for Dawn.
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [[ -n "$v" ]] && dpkg --compare-versions "$v" ge 24
}
have_chromium() { [[ -x /usr/bin/chromium && -f /usr/lib/chromium/vk_swiftshader_icd.json ]]; }

# A machine with a real GPU (a kernel GPU device node) needs none of this: nothing is installed,
# the tests use its adapter, and the browser test skips if Chromium is absent.
if [[ -n "${MSL_SKIP_SETUP:-}" ]] || compgen -G '/dev/nvidia[0-9]*' >/dev/null || compgen -G '/dev/dri/renderD*' >/dev/null; then
  echo "setup-system: a GPU device (or MSL_SKIP_SETUP) is present; installing nothing"
  exit 0
fi

if have_lavapipe && have_chromium; then
  echo "setup-system: lavapipe $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) and chromium already installed"
  exit 0
fi

if [[ ! -f /etc/debian_version ]]; then
  echo "setup-system: not a Debian machine; install a Vulkan driver (Mesa lavapipe >= 24) and Chromium yourself" >&2
  exit 1
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup-system: need root to apt-get install" >&2; exit 1; }
  SUDO=sudo
fi

# Add bookworm-backports to the existing deb822 source entry (no new host is named here).
src=/etc/apt/sources.list.d/debian.sources
if [[ -f "$src" ]] && ! grep -q 'bookworm-backports' "$src"; then
  echo "setup-system: adding bookworm-backports to $src"
  $SUDO sed -i -E '0,/^Suites: bookworm bookworm-updates$/s//Suites: bookworm bookworm-updates bookworm-backports/' "$src"
elif [[ ! -f "$src" ]] && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  line=$(grep -E '^deb .* bookworm main' /etc/apt/sources.list | head -n1 || true)
  [[ -n "$line" ]] || { echo "setup-system: cannot find a bookworm apt source to extend" >&2; exit 1; }
  echo "${line/ bookworm / bookworm-backports }" | $SUDO tee -a /etc/apt/sources.list >/dev/null
fi

export DEBIAN_FRONTEND=noninteractive
echo "setup-system: installing mesa-vulkan-drivers (bookworm-backports) and chromium"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
$SUDO apt-get install -y -qq chromium >/dev/null
echo "setup-system: done (lavapipe $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers))"
