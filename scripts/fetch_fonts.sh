#!/usr/bin/env bash
# Fetch the fonts `htrlab synth` uses from Debian's archive (no root needed) and from npm's @fontsource
# packages (Google Fonts' handwriting families, OFL/Apache only), with each package's copyright/licence file
# beside its fonts. The fonts are not bundled in the repository; their licences (OFL, GPL, Apache, ...) stay
# with them.
#   handwriting fonts -> ${HTRLAB_FONTS:-~/.local/share/htrlab/fonts}          (synth's default font folder)
#                        Debian packages in fonts-*/, npm families in npm-<family>/ (latin subset, .woff)
#   printed/typed     -> ${HTRLAB_PRINTED_FONTS:-~/.local/share/htrlab/printed-fonts}  (synth --style printed)
# Usage: scripts/fetch_fonts.sh [handwriting|npm|printed|all]   (default: all; handwriting = Debian + npm)
set -euo pipefail
which="${1:-all}"
hand_dest="${HTRLAB_FONTS:-$HOME/.local/share/htrlab/fonts}"
printed_dest="${HTRLAB_PRINTED_FONTS:-$HOME/.local/share/htrlab/printed-fonts}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
hand="fonts-dkg-handwriting fonts-bwht fonts-sjfonts fonts-femkeklaver fonts-breip fonts-kristi
fonts-dancingscript fonts-kaushanscript fonts-humor-sans fonts-comic-neue fonts-rufscript fonts-joscelyn"
# npm @fontsource handwriting families: print and joined school hands, casual pens, and formal/old scripts
npm_hand="caveat indie-flower homemade-apple shadows-into-light shadows-into-light-two patrick-hand kalam
gochi-hand just-another-hand coming-soon annie-use-your-telescope covered-by-your-grace gloria-hallelujah
schoolbell handlee nanum-pen-script sue-ellen-francisco loved-by-the-king the-girl-next-door reenie-beanie
over-the-rainbow waiting-for-the-sunrise nothing-you-could-do dawning-of-a-new-day la-belle-aurore zeyada
cedarville-cursive calligraffitti swanky-and-moo-moo short-stack neucha architects-daughter delius itim mali
caveat-brush gaegu shantell-sans edu-nsw-act-foundation edu-qld-beginner edu-sa-beginner edu-tas-beginner
edu-vic-wa-nt-beginner playwrite-gb-j playwrite-gb-s playwrite-us-trad playwrite-us-modern playwrite-au-sa
playwrite-nz playwrite-ie playwrite-fr-trad playwrite-de-grund playwrite-it-moderna playwrite-za
mrs-saint-delafield herr-von-muellerhoff monsieur-la-doulaise mr-de-haviland miss-fajardose dr-sugiyama
pinyon-script petit-formal-script italianno tangerine marck-script meddon sacramento satisfy allura alex-brush
great-vibes parisienne yellowtail cookie damion norican rochester niconne bilbo euphoria-script ms-madi
square-peg whisper comforter ephesis birthstone send-flowers nanum-brush-script klee-one yomogi"
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

fetch_npm() {  # fetch @fontsource FAMILIES... into DEST/npm-<family>/ (regular and bold latin .woff + LICENSE)
  local dest="$1"; shift
  command -v npm >/dev/null || { echo "warning: npm not found; skipping the npm fonts" >&2; return 0; }
  for f in "$@"; do
    local d="$work/npm-$f"
    mkdir -p "$d"
    if ! (cd "$d" && npm pack -q "@fontsource/$f" >/dev/null 2>&1); then
      echo "warning: could not download @fontsource/$f" >&2; continue
    fi
    tar xzf "$d"/*.tgz -C "$d"
    local lic
    lic="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("license", ""))' "$d/package/package.json")"
    case "$lic" in
      OFL-1.1|Apache-2.0) ;;
      *) echo "warning: @fontsource/$f has licence '$lic' (not OFL/Apache); skipped" >&2; continue ;;
    esac
    local fonts=("$d"/package/files/"$f"-latin-{400,700}-normal.woff)
    local got=0
    mkdir -p "$dest/npm-$f"
    for ff in "${fonts[@]}"; do
      if [ -f "$ff" ]; then cp "$ff" "$dest/npm-$f/"; got=1; fi
    done
    if [ "$got" = 0 ]; then
      echo "warning: @fontsource/$f has no latin .woff; skipped" >&2; rmdir "$dest/npm-$f"; continue
    fi
    cp "$d/package/LICENSE" "$dest/npm-$f/LICENSE" 2>/dev/null || echo "$lic" > "$dest/npm-$f/LICENSE"
    echo "fetched @fontsource/$f ($lic)"
  done
  echo "fonts in $dest"
}

case "$which" in
  handwriting) fetch "$hand_dest" $hand; fetch_npm "$hand_dest" $npm_hand ;;
  npm) fetch_npm "$hand_dest" $npm_hand ;;
  printed) fetch "$printed_dest" $printed ;;
  all) fetch "$hand_dest" $hand; fetch_npm "$hand_dest" $npm_hand; fetch "$printed_dest" $printed ;;
  *) echo "usage: $0 [handwriting|npm|printed|all]" >&2; exit 2 ;;
esac
