#!/usr/bin/env bash
# Browser bundle of the H5 capture page's live face guidance: onnxruntime-web's WASM backend, fetched through npm
# at a PINNED version, checked against the PINNED tarball hash below, and reduced to the three files the page
# loads. Nothing is committed: the files go to the cache that service/features/wechat/h5/vendor.py serves
# (PENSION_CERT_WEB_DIR, default ~/.cache/pension-cert/web). Without npm or network this exits 0 with a warning:
# the page then keeps today's flow (no live guidance). Usage: scripts/web_bundle.sh [--force]
set -euo pipefail

ORT_VERSION="1.31.1"
# npm's dist.integrity of onnxruntime-web@1.31.1 (`npm view onnxruntime-web@1.31.1 dist.integrity`).
ORT_SHA512="5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="
# The UMD bundle of the WASM-only build, and the WASM backend it loads (single-threaded SIMD: no
# cross-origin isolation needed). Keep in step with vendor.ORT_FILES.
ORT_FILES=(ort.wasm.min.js ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm)

WEB_DIR="${PENSION_CERT_WEB_DIR:-$HOME/.cache/pension-cert/web}"
DEST="$WEB_DIR/onnxruntime-web-$ORT_VERSION"

warn() { echo "web_bundle: $*; the H5 page will use its fallback flow (no live guidance)" >&2; }

if [ "${1:-}" != "--force" ] && [ -f "$DEST/.complete" ]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  warn "npm is not installed"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && npm pack --silent "onnxruntime-web@$ORT_VERSION" >/dev/null 2>"$work/npm.log"); then
  warn "npm pack onnxruntime-web@$ORT_VERSION failed ($(tail -n 1 "$work/npm.log"))"
  exit 0
fi
tarball="$work/onnxruntime-web-$ORT_VERSION.tgz"
got="$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$got" != "$ORT_SHA512" ]; then
  # A changed tarball under a pinned version is an attack or a broken mirror: refuse it loudly.
  echo "web_bundle: sha512 of onnxruntime-web-$ORT_VERSION.tgz is $got, expected $ORT_SHA512" >&2
  exit 1
fi
members=()
for f in "${ORT_FILES[@]}"; do members+=("package/dist/$f"); done
tar -xzf "$tarball" -C "$work" "${members[@]}"
staging="$DEST.tmp.$$"
rm -rf "$staging" && mkdir -p "$staging"
for f in "${ORT_FILES[@]}"; do cp "$work/package/dist/$f" "$staging/$f"; done
(cd "$staging" && sha256sum "${ORT_FILES[@]}" >.complete)
rm -rf "$DEST" && mv "$staging" "$DEST"
echo "web_bundle: onnxruntime-web $ORT_VERSION in $DEST" >&2
