#!/usr/bin/env bash
# scripts/fetch_text_corpus.sh [DEST] [MAX_BYTES]: a multilingual text corpus for demo_pike.
#
# Downloads the Debian man-page packages of seven languages with `apt-get download` (no root
# needed: the .deb lands in a temporary folder and is unpacked with `dpkg-deb -x`, nothing is
# installed), turns the groff sources into plain text and writes one folder per language:
#   DEST/<lang>/man.txt      (en de fr es it pl ru; DEST defaults to data/corpus, git-ignored)
# Groff to text: request lines (starting with '.' or "'") are dropped, except that the text
# arguments of the font and heading macros (.B .I .BR .IR .RB .RI .BI .IB .SM .SB .SH .SS) are kept;
# inline escapes (\fB \fI \fR \fP \(xx \*(xx \- \& \e ...) are removed or mapped to their
# characters. Each language file is capped at MAX_BYTES (default 4000000), cut at a line end.
# Re-running skips languages whose man.txt already exists.
set -euo pipefail

dest=${1:-data/corpus}
max_bytes=${2:-4000000}
langs=(en de fr es it pl ru)

command -v apt-get >/dev/null || { echo "fetch_text_corpus: apt-get not found (Debian/Ubuntu needed)" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "fetch_text_corpus: dpkg-deb not found" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$dest"

# groff source on stdin -> plain text on stdout
groff_to_text() {
  sed -E \
    -e '/^\.\\"/d' -e "/^'\\\\\"/d" \
    -e 's/^\.(B|I|SM|SB|BR|IR|RB|RI|BI|IB|SH|SS)[[:space:]]+//' \
    -e '/^[.'"'"']/d' \
    -e 's/\\f(\[[^]]*\]|\([A-Za-z]{2}|[A-Za-z0-9])//g' \
    -e 's/\\s[-+]?[0-9]+//g' \
    -e 's/\\\(em|\\\(en/-/g' -e 's/\\\(aq/'"'"'/g' -e 's/\\\((lq|rq|dq)/"/g' \
    -e 's/\\\*\(([A-Za-z]{2})//g' -e 's/\\\*\[[^]]*\]//g' -e 's/\\\*[A-Za-z]//g' \
    -e 's/\\\([A-Za-z]{2}//g' -e 's/\\\[[^]]*\]//g' \
    -e 's/\\-/-/g' -e 's/\\&//g' -e 's/\\e/\\/g' -e 's/\\ / /g' -e 's/\\[|^%c:,/]//g' \
    -e 's/"//g' \
  | grep -v '^[[:space:]]*$' || true
}

for lang in "${langs[@]}"; do
  out="$dest/$lang/man.txt"
  if [[ -s $out ]]; then
    echo "fetch_text_corpus: $out exists, skipped"
    continue
  fi
  pkg="manpages-$lang"
  [[ $lang == en ]] && pkg=manpages
  work="$tmp/$lang"
  mkdir -p "$work"
  echo "fetch_text_corpus: $pkg ($lang)"
  if ! (cd "$work" && apt-get download "$pkg" >/dev/null 2>"$work/apt.err"); then
    echo "fetch_text_corpus: apt-get download $pkg failed:" >&2
    cat "$work/apt.err" >&2
    continue
  fi
  dpkg-deb -x "$work"/*.deb "$work/x"
  mkdir -p "$dest/$lang"
  # Deterministic order (sorted paths); pages only, no symlinked aliases (.so lines are dropped anyway).
  # (head closes the pipe early once the cap is reached: that SIGPIPE is expected, hence +o pipefail)
  set +o pipefail
  find "$work/x/usr/share/man" -type f -name '*.gz' | LC_ALL=C sort | while read -r f; do
    zcat "$f" 2>/dev/null | groff_to_text
  done | head -c "$max_bytes" > "$out.tmp"
  set -o pipefail
  # cut at the last full line so no multi-byte character is split
  if [[ $(wc -c < "$out.tmp") -ge $max_bytes ]]; then sed -i '$d' "$out.tmp"; fi
  mv "$out.tmp" "$out"
  echo "fetch_text_corpus: $out ($(wc -c < "$out") bytes)"
done

n=$(find "$dest" -name man.txt -size +1k | wc -l)
echo "fetch_text_corpus: $n languages in $dest"
[[ $n -ge 2 ]] || { echo "fetch_text_corpus: fewer than two languages fetched" >&2; exit 1; }
