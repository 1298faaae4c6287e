#!/usr/bin/env bash
# Installs the package offline into a fresh venv as a user would
# (`pip install --no-index --no-build-isolation ./python`, Debian's
# setuptools), then runs its pytest suite from outside the source tree, the
# library found through the build folder the install recorded.
#   install_and_test.sh SOURCE_DIR SPECSTEER_BIN
set -euo pipefail
src="$1"; bin="$2"
py=/usr/bin/python3
[ -x "$py" ] || py="$(command -v python3)"
if ! "$py" -c 'import venv, setuptools, pytest' 2>/dev/null; then
  echo "python package test: needs python3-venv, python3-setuptools, python3-pytest (bash tools/deps.sh --test)"
  [ "${SPECSTEER_REQUIRE_ALL:-0}" = 1 ] && exit 1 || exit 77
fi
work="$(mktemp -d /tmp/specsteer-python.XXXXXX)"
trap 'rm -rf "$work"' EXIT
# The source tree is copied so the build writes nothing into the checkout.
cp -r "$src/python" "$work/python"
rm -rf "$work/python/build" "$work/python"/*.egg-info
# setup.py records the build folder beside python/: point it at this build.
ln -s "$(dirname "$bin")" "$work/build"
"$py" -m venv --system-site-packages "$work/venv"
"$work/venv/bin/pip" install --quiet --no-index --no-build-isolation "$work/python"
cd "$work"  # not the source tree: the installed package is what gets imported
"$work/venv/bin/python" -c 'import specsteer, sys; print("installed:", specsteer.__file__, "library:", specsteer.library_path())'
SPECSTEER_SOURCE_DIR="$src" SPECSTEER_BIN="$bin" "$work/venv/bin/python" -m pytest -q -p no:cacheprovider \
  "$src/python/tests"
