#!/usr/bin/env bash
# Fetch the fonts `htrlab synth` uses from Debian's archive (no root needed), with each package's
# copyright/licence file beside its fonts. The fonts are not bundled in the repository; their licences (OFL,
# GPL, Apache, ...) stay with them.
#   handwriting fonts -> ${HTRLAB_FONTS:-~/.local/share/htrlab/fonts}          (synth's default font folder)
#   printed/typed     -> ${HTRLAB_PRINTED_FONTS:-~/.local/share/htrlab/printed-fonts}  (synth --style printed)
# Usage: scripts/fetch_fonts.sh [handwriting|printed|all]   (default: all)
set -euo pipefail
which="${1:-all}"
hand_dest="${HTRLAB_FONTS:-$HOME/.local/share/htrlab/fonts}"
printed_dest="${HTRLAB_PRINTED_FONTS:-$HOME/.local/share/htrlab/printed-fonts}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
hand="fonts-dkg-handwriting fonts-bwht fonts-sjfonts fonts-femkeklaver fonts-breip fonts-kristi
fonts-dancingscript fonts-kaushanscript fonts-humor-sans fonts-comic-neue fonts-rufscript fonts-joscelyn"
printed="fonts-liberation fonts-urw-base35 fonts-freefont-ttf fonts-crosextra-carlito fonts-crosextra-caladea
fonts-linuxlibertine fonts-ebgaramond fonts-courier-prime fonts-open-sans fonts-roboto-unhinted fonts-noto-mono
fonts-go fonts-cantarell fonts-texgyre fonts-dejavu-core"

fetch() {  # fetch PACKAGES... into DEST
  local dest="$1"; shift
  mkdir -p "$dest"
  for p in "$@"; do
    if (cd "$work" && apt-get download -qq "$p" >/dev/null 2>&1); then
      dpkg -x "$work/$p"_*.deb "$work/x-$p"
      mkdir -p "$dest/$p"
      find "$work/x-$p" \( -name '*.ttf' -o -name '*.otf' \) -exec cp {} "$dest/$p/" \;
      find "$work/x-$p" -path '*doc*' -name copyright -exec cp {} "$dest/$p/COPYRIGHT" \;
      echo "fetched $p"
    else
      echo "warning: could not download $p (run 'apt-get update' first?)" >&2
    fi
  done
  echo "fonts in $dest"
}

case "$which" in
  handwriting) fetch "$hand_dest" $hand ;;
  printed) fetch "$printed_dest" $printed ;;
  all) fetch "$hand_dest" $hand; fetch "$printed_dest" $printed ;;
  *) echo "usage: $0 [handwriting|printed|all]" >&2; exit 2 ;;
esac
