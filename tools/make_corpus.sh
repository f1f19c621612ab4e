#!/usr/bin/env bash
# Makes tests/data/corpus/opticks-book1-part1.txt, the English prose fixture of the
# perplexity tests: Book I, Part I of Isaac Newton's "Opticks" (4th edition, 1730;
# public domain), as the Debian 12 package golang-1.19-src ships the Project
# Gutenberg transcription (ebook #33504, without Gutenberg's header and license) in
# /usr/share/go-1.19/src/testdata/Isaac.Newton-Opticks.txt. The excerpt is the
# file's first lines up to (not including) the second "THE FIRST BOOK OF OPTICKS"
# heading, where Part II starts, with the trailing blank lines dropped.
#
# Usage (as root on Debian 12, from the repository root): tools/make_corpus.sh [OUT]
set -euo pipefail

SRC=/usr/share/go-1.19/src/testdata/Isaac.Newton-Opticks.txt
OUT=${1:-tests/data/corpus/opticks-book1-part1.txt}

if [ ! -f "$SRC" ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends golang-1.19-src
fi

awk '/^THE FIRST BOOK OF OPTICKS$/ { if (++n == 2) exit }
     /^$/ { blank++; next }
     { while (blank > 0) { print ""; blank-- } print }' "$SRC" > "$OUT"

echo "$OUT: $(wc -c < "$OUT") bytes, $(wc -l < "$OUT") lines, sha256 $(sha256sum "$OUT" | cut -d' ' -f1)"
echo "source: golang-1.19-src $(dpkg-query -W -f='${Version}' golang-1.19-src 2>/dev/null || echo '?'), $SRC"
