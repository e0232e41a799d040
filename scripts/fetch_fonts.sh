#!/usr/bin/env bash
# Fetch the handwriting fonts `htrlab synth` uses from Debian's archive (no root needed) into
# ${HTRLAB_FONTS:-~/.local/share/htrlab/fonts}, with each package's copyright/licence file beside its fonts.
# The fonts are not bundled in the repository; their licences (OFL, GPL, Apache, ...) stay with them.
set -euo pipefail
dest="${HTRLAB_FONTS:-$HOME/.local/share/htrlab/fonts}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
packages="fonts-dkg-handwriting fonts-bwht fonts-sjfonts fonts-femkeklaver fonts-breip fonts-kristi
fonts-dancingscript fonts-kaushanscript fonts-humor-sans fonts-comic-neue fonts-rufscript fonts-joscelyn"
mkdir -p "$dest"
cd "$work"
for p in $packages; do
  if apt-get download -qq "$p" >/dev/null 2>&1; then
    dpkg -x "$p"_*.deb "x-$p"
    mkdir -p "$dest/$p"
    find "x-$p" \( -name '*.ttf' -o -name '*.otf' \) -exec cp {} "$dest/$p/" \;
    find "x-$p" -path '*doc*' -name copyright -exec cp {} "$dest/$p/COPYRIGHT" \;
    echo "fetched $p"
  else
    echo "warning: could not download $p (run 'apt-get update' first?)" >&2
  fi
done
echo "fonts in $dest"
