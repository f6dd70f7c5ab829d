#!/usr/bin/env bash
# Installs garak, pinned and without torch, into its own virtualenv in the cache, and links it
# as .venv-garak: the validation scan test runs the operator's pod script with it. Every
# package comes from hack/garak-requirements.txt with --no-deps (garak's own requirements pull
# torch and CUDA wheels, several GB; the string-detector probes never import them). A venv
# keeps absolute paths, so it lives in the cache, one per garak and Python version.
#
#   hack/install-garak.sh              install (or reuse), link .venv-garak, print the venv dir
#   hack/install-garak.sh --print-dir  print the venv dir only (it may not be installed yet)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REQUIREMENTS=$HACK_DIR/garak-requirements.txt
GARAK_VERSION=$(sed -n 's/^garak==//p' "$REQUIREMENTS")
[[ -n $GARAK_VERSION ]] || die "no garak==VERSION line in $REQUIREMENTS"
PYTHON=${GARAK_PYTHON:-python3}
python_version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
  || die "$PYTHON does not run; set GARAK_PYTHON to a Python >= 3.10"
GARAK_VENV=$CACHE_ROOT/venv-garak-$GARAK_VERSION-py$python_version
LINK=$REPO_ROOT/.venv-garak
# The requirements' digest: a changed pin installs afresh.
wanted=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)

if [[ ${1:-} == --print-dir ]]; then
  echo "$GARAK_VENV"
  exit 0
fi

link() {
  if [[ -e $LINK && ! -L $LINK ]]; then
    log "$LINK is a directory of its own, not a link: left as it is (the cached venv is $GARAK_VENV)"
  else
    ln -sfn "$GARAK_VENV" "$LINK"
  fi
  echo "$GARAK_VENV"
}

# What the default probes, the OpenAI-compatible target and garak's CLI import.
smoke_test() {
  "$GARAK_VENV/bin/python" -c '
import garak.cli, garak.generators.openai
import garak.probes.promptinject, garak.probes.dan, garak.probes.encoding
import garak.detectors.promptinject, garak.detectors.dan, garak.detectors.encoding
' >/dev/null 2>&1
}

if [[ -f $GARAK_VENV/.complete && $(cat "$GARAK_VENV/.complete") == "$wanted" ]] && smoke_test; then
  log "garak $GARAK_VERSION cached in $GARAK_VENV"
  link
  exit 0
fi

log "installing garak $GARAK_VERSION without torch into $GARAK_VENV"
log "cold: about 35 MB from PyPI and 200 MB on disk, under a minute; later runs reuse it"
started=$SECONDS
rm -rf "$GARAK_VENV"
mkdir -p "$CACHE_ROOT"
"$PYTHON" -m venv "$GARAK_VENV"
# PYTHONPATH (the Makefile exports the operator's) would show pip the operator's metadata.
PYTHONPATH='' PIP_DISABLE_PIP_VERSION_CHECK=1 "$GARAK_VENV/bin/python" -m pip install --quiet \
  --no-deps -r "$REQUIREMENTS" \
  || { rm -rf "$GARAK_VENV"; die "pip could not install $REQUIREMENTS"; }
smoke_test || {
  "$GARAK_VENV/bin/python" -c 'import garak.cli, garak.generators.openai' >&2 || true
  die "garak $GARAK_VERSION does not import in $GARAK_VENV: a dependency is missing from $REQUIREMENTS"
}
echo "$wanted" >"$GARAK_VENV/.complete"
log "garak $GARAK_VERSION installed in $(( SECONDS - started ))s ($(du -sh "$GARAK_VENV" | cut -f1))"
link
