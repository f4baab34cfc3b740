#!/usr/bin/env bash
# scripts/make_mixed_corpus.sh [DEST] [SRC]: a corpus whose domains differ in how much there is to
# learn, for demo_pike's second setting (PiKE's mechanism: move samples away from domains whose
# gradients are small or noise).
#
# Domains written to DEST (default data/corpus-mixed, git-ignored), one folder each:
#   en de fr ru   the man pages of scripts/fetch_text_corpus.sh (copied from SRC, default data/corpus)
#   code          the C headers under /usr/include (sorted by path, comments and all), first 3 MB
#   noise         3 MB of pseudo-random base64 lines (awk, fixed seed): nothing to learn beyond the
#                 64-symbol distribution, so its loss stops falling within a few hundred steps
# Re-running overwrites DEST.
set -euo pipefail

dest=${1:-data/corpus-mixed}
src=${2:-data/corpus}
cap=3000000

for l in en de fr ru; do
  [[ -s $src/$l/man.txt ]] || { echo "make_mixed_corpus: $src/$l/man.txt missing: run scripts/fetch_text_corpus.sh first" >&2; exit 1; }
done
[[ -d /usr/include ]] || { echo "make_mixed_corpus: /usr/include not found (install libc6-dev)" >&2; exit 1; }

tmp=$(mktemp -d "${dest%/}.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for l in en de fr ru; do
  mkdir -p "$tmp/$l"
  cp "$src/$l/man.txt" "$tmp/$l/man.txt"
done
mkdir -p "$tmp/code" "$tmp/noise"
# '|| true': head closes the pipe once it has enough bytes
{ find /usr/include -name '*.h' -type f -print0 | LC_ALL=C sort -z | xargs -0 cat 2>/dev/null || true; } | head -c "$cap" >"$tmp/code/headers.txt"
awk -v n="$cap" 'BEGIN {
  srand(12345)
  a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  for (b = 0; b < n; b += 77) {
    line = ""
    for (i = 0; i < 76; i++) line = line substr(a, int(rand() * 64) + 1, 1)
    print line
  }
}' >"$tmp/noise/base64.txt"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
du -sh "$dest"/* | sed 's/^/make_mixed_corpus: /'
