#!/usr/bin/env bash
# bench/gpu-run.sh: the GPU benchmarks on a Linux machine with a real GPU and nothing installed.
#
#   bash bench/gpu-run.sh --pack        # here (a dev machine): gather what the run needs in .gpu-run/
#   bash bench/gpu-run.sh [out.json]    # there (the GPU machine, with .gpu-run/ copied beside the repo)
#
# --pack bundles bench/gpu-run.ts with esbuild into one file (WGSL and Wasm inlined), and copies
# the Node binary (xz), Dawn's dawn.node for linux-x64 and the Vulkan loader (libvulkan1, Debian
# package, unpacked there only when `ldconfig -p` shows none). The run unpacks them under /tmp,
# finds the NVIDIA/AMD Vulkan driver, and writes one JSON file (default $OUT/gpu-run.json or
# bench/.out/gpu-run.json): decode/prefill tok/s, fraction of copy bandwidth, host ms per token,
# dispatches per token and peak memory at Zamba2-1.2B and 2.7B shapes in bf16, q8_0 and q4_k.
# Budget: well under 10 minutes on a recent GPU (a 2.7B bf16 load is ~5.4 GB of generated weights).
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=.gpu-run

if [[ "${1:-}" == "--pack" ]]; then
  rm -rf "$PACK" && mkdir -p "$PACK/node_modules/webgpu/dist/linux-x64"
  node scripts/build.mjs --no-types >/dev/null
  node -e "
    const { build } = require('esbuild');
    build({ entryPoints: ['bench/gpu-run.ts'], outfile: '$PACK/gpu-run.mjs', bundle: true, format: 'esm', platform: 'node',
      target: ['node20'], loader: { '.wgsl': 'text', '.wasm': 'binary' }, external: ['webgpu'], logLevel: 'warning',
      banner: { js: \"import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);\" } })
      .catch((e) => { console.error(e); process.exit(1); });"
  cp -r node_modules/webgpu/package.json node_modules/webgpu/index.js node_modules/webgpu/*.d.ts "$PACK/node_modules/webgpu/" 2>/dev/null || true
  cp -r node_modules/webgpu/dist/*.js node_modules/webgpu/dist/*.mjs "$PACK/node_modules/webgpu/dist/" 2>/dev/null || true
  cp node_modules/webgpu/dist/linux-x64/dawn.node "$PACK/node_modules/webgpu/dist/linux-x64/"
  xz -T0 -6 -c "$(command -v node)" > "$PACK/node.xz"
  (cd "$PACK" && apt-get download libvulkan1 >/dev/null 2>&1) || echo "gpu-run: could not download libvulkan1 (the GPU machine must have a Vulkan loader)"
  du -sh "$PACK"
  echo "gpu-run: packed into $PACK/ (keep it out of git; carry it to the GPU machine)"
  exit 0
fi

OUTFILE="${1:-${OUT:-bench/.out}/gpu-run.json}"
mkdir -p "$(dirname "$OUTFILE")"
[[ -d "$PACK" ]] || { echo "gpu-run: $PACK/ is missing: run 'bash bench/gpu-run.sh --pack' where the repo was built" >&2; exit 1; }
WORK=/tmp/msl-gpu-run && mkdir -p "$WORK"
NODE=$(command -v node || true)
if [[ -z "$NODE" ]]; then xz -dc "$PACK/node.xz" > "$WORK/node" && chmod +x "$WORK/node" && NODE="$WORK/node"; fi
if ! ldconfig -p 2>/dev/null | grep -q libvulkan.so.1; then
  for f in "$PACK"/libvulkan1*.deb; do [[ -f "$f" ]] && dpkg -x "$f" "$WORK/root"; done
  export LD_LIBRARY_PATH="$WORK/root/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
fi
# NVIDIA containers often keep the ICD outside the standard directories.
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [[ -f "$icd" && -z "${VK_DRIVER_FILES:-}" ]]; then export VK_DRIVER_FILES="$icd"; fi
done
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp} NODE_PATH="$PWD/$PACK/node_modules"
cp "$PACK/gpu-run.mjs" "$WORK/gpu-run.mjs"
ln -sfn "$PWD/$PACK/node_modules" "$WORK/node_modules"
"$NODE" --version
timeout 570 "$NODE" "$WORK/gpu-run.mjs" --out "$OUTFILE"
echo "gpu-run: wrote $OUTFILE"
