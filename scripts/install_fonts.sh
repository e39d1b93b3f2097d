#!/usr/bin/env bash
# Install the Debian fonts and the word list that `crnn synth` renders with.
#
# Usage (as root, or with sudo; Debian 12 or similar):  scripts/install_fonts.sh
# Idempotent: packages already installed are left alone; packages this release does not
# know are skipped (with a note) instead of failing, so the list can outlive a release.
# Set SKIP_APT_UPDATE=1 to skip `apt-get update` (e.g. in CI when the cache is fresh).
# Quiet: apt output goes to a log shown only on failure (VERBOSE=1 shows it all).
set -euo pipefail
. "$(dirname "$0")/quiet_run.sh"

as_root "$@"

# Latin fonts with full [0-9a-zA-Z] coverage, spread over serif / sans / mono / display /
# handwriting styles so the recogniser does not overfit a few families.
PACKAGES=(
    wamerican
    fontconfig
    fonts-dejavu-core fonts-dejavu-extra
    fonts-liberation fonts-liberation2
    fonts-freefont-ttf
    fonts-noto-core
    fonts-urw-base35
    fonts-roboto fonts-roboto-slab
    fonts-open-sans
    fonts-lato
    fonts-cantarell
    fonts-croscore
    fonts-crosextra-caladea fonts-crosextra-carlito
    fonts-comic-neue
    fonts-dancingscript
    fonts-ebgaramond
    fonts-hack
    fonts-inconsolata
    fonts-jetbrains-mono
    fonts-texgyre
    fonts-lobster fonts-lobstertwo
    fonts-cabin
    fonts-inter
    fonts-go
    fonts-adf-accanthis fonts-adf-berenis fonts-adf-gillius fonts-adf-universalis
    fonts-adf-baskervald fonts-adf-ikarius fonts-adf-libris fonts-adf-mekanus
    fonts-adf-oldania fonts-adf-romande fonts-adf-switzera fonts-adf-tribun
    fonts-adf-verana
    fonts-cmu
    fonts-bebas-neue
    fonts-league-spartan
    fonts-oldstandard
    fonts-sil-gentium fonts-sil-gentiumplus fonts-sil-charis fonts-sil-andika
    fonts-sil-doulos
    fonts-ubuntu
    fonts-firacode
    fonts-quicksand
    fonts-montserrat
    fonts-ibm-plex
    fonts-courier-prime
    fonts-junicode
    fonts-linuxlibertine
    fonts-mononoki
    fonts-staypuft
    fonts-breeze
    fonts-fantasque-sans
    fonts-femkeklaver
    fonts-humor-sans
    fonts-isabella
    fonts-yanone-kaffeesatz
    fonts-play
)

export DEBIAN_FRONTEND=noninteractive
if [ "${SKIP_APT_UPDATE:-0}" != "1" ]; then
    quiet apt-get update -qq
fi

available=()
missing=()
wanted=("${PACKAGES[@]}")
# One `apt-cache policy` call for all names (fast); a name is installable only if it has a
# real candidate version (virtual or removed packages report "(none)" or nothing at all).
declare -A candidate=()
while read -r name cand; do
    candidate["$name"]="$cand"
done < <(apt-cache policy "${wanted[@]}" 2>/dev/null | awk '
    /^[^ ].*:$/ { name = substr($0, 1, length($0) - 1) }
    /^  Candidate:/ { print name, $2 }')
for pkg in "${wanted[@]}"; do
    cand="${candidate[$pkg]:-(none)}"
    if [ "$cand" != "(none)" ]; then
        available+=("$pkg")
    else
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "install_fonts.sh: not in this release, skipped: ${missing[*]}" >&2
fi

# One apt-get call for everything keeps it fast; already installed packages are no-ops.
quiet apt-get install -y -qq --no-install-recommends "${available[@]}"
quiet fc-cache -f || true

nfiles=$(find /usr/share/fonts -type f \( -iname '*.ttf' -o -iname '*.otf' \) | wc -l)
echo "install_fonts.sh: ${#available[@]} packages present; ${nfiles} .ttf/.otf files under /usr/share/fonts"
if [ -f /usr/share/dict/words ]; then
    echo "install_fonts.sh: word list /usr/share/dict/words ($(wc -l </usr/share/dict/words) lines)"
fi
