#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: system packages, a virtual environment with the project and its
# dev tools, and the models directory. Sourced by scripts/start.sh, scripts/test.sh and scripts/test_at.sh
# (each sets its own strict mode); it leaves the caller in the repository root with PATH and the PENSION_CERT_*
# folders exported.
# Strict inside, but the caller's shell options come back at the end: sourced from an interactive shell or a
# script of its own, `set -e` would otherwise end that shell at its next failing command. (A failure in here still
# ends the caller, as it stops a script that runs this one.)
# Read from $- and shopt, not `$(set +o)`: a command substitution runs without errexit, so it would report -e off.
_setup_restore=()
[[ $- == *e* ]] || _setup_restore+=(+e)
[[ $- == *u* ]] || _setup_restore+=(+u)
shopt -qo pipefail || _setup_restore+=(+o pipefail)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# System packages: free CJK and monospace fonts render the synthetic ID cards used by tests and benchmarks.
APT_PACKAGES=(fonts-noto-cjk fonts-dejavu-core fontconfig postgresql redis-server fonts-ocr-b chromium espeak-ng)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
  if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
    # Not root and no sudo: apt-get cannot work, and none of these is needed to run the service (fonts for the
    # demo kit's card, the rest for tests): say what to ask for and go on.
    echo "setup: cannot install ${missing[*]} (not root, no sudo); ask an administrator to run:" \
      "apt-get install --no-install-recommends ${missing[*]}" >&2
  else
    echo "setup: installing ${missing[*]}" >&2
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# The versions are constraints.txt's (the set CI passed with), so a release of a tool or library since cannot
# change the checks or the service on a fresh machine; a changed pyproject.toml or constraints.txt reinstalls.
stamp=.venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip "setuptools>=70" >/dev/null  # venv's setuptools 65 has CVEs
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
  rm -f .venv/.installed-* && touch "$stamp"
fi

# Development and CI use the pinned files in ../shared/models; production fetches them (`pension-cert models fetch`).
if [ -z "${PENSION_CERT_MODELS_DIR:-}" ] && [ -d "$ROOT/../shared/models" ]; then
  export PENSION_CERT_MODELS_DIR="$(cd "$ROOT/../shared/models" && pwd)"
fi
if [ -z "${PENSION_CERT_DATA_DIR:-}" ] && [ -d "$ROOT/../shared/data" ]; then
  export PENSION_CERT_DATA_DIR="$(cd "$ROOT/../shared/data" && pwd)"
fi
export PATH="$ROOT/.venv/bin:$PATH"

# The H5 capture page's live face guidance (onnxruntime-web, pinned, through npm); without npm or network the
# page keeps its fallback flow, so a failure here never stops the set-up.
"$ROOT/scripts/web_bundle.sh" || echo "setup: web bundle not installed; the H5 page uses its fallback flow" >&2

if ((${#_setup_restore[@]})); then
  set "${_setup_restore[@]}"
fi
unset _setup_restore
