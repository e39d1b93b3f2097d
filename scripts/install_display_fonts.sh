#!/usr/bin/env bash
# Install display, script and handwriting faces for `crnn synth` from the npm registry.
#
# Why: benchmarks kept aside (CUTE80, SVT-Perspective) fail most on decorative signage faces
# (casual scripts, fat italic brand faces, slab and condensed display, neon/outline letters),
# which the Debian font packages of scripts/install_fonts.sh barely cover. The Google Fonts
# families are published on npm as @fontsource/<name>; each tarball carries
# files/<name>-latin-400-normal.woff, which Pillow's FreeType renders.
#
# Usage:  scripts/install_display_fonts.sh [DEST]     (default DEST: /usr/local/share/fonts/fontsource,
#         one of the folders `crnn synth` scans; needs write access there)
# Idempotent; versions are pinned so a rendered set can be made again byte for byte.
# Needs `npm` (Debian: apt-get install npm). Quiet unless VERBOSE=1.
set -euo pipefail
. "$(dirname "$0")/quiet_run.sh"

DEST="${1:-/usr/local/share/fonts/fontsource}"
# name@version: script / handwriting, then display (bold, slab, condensed, outline, techno).
FAMILIES=(
    pacifico@5.3.0 kaushan-script@5.3.0 satisfy@5.3.0 great-vibes@5.3.0 courgette@5.3.0
    cookie@5.3.0 yellowtail@5.3.0 sacramento@5.3.0 allura@5.3.0 damion@5.3.0 marck-script@5.3.0
    lobster-two@5.3.0 permanent-marker@5.3.0 rock-salt@5.3.0 shadows-into-light@5.3.0
    patrick-hand@5.3.0 kalam@5.3.0 caveat@5.3.0 indie-flower@5.3.0 architects-daughter@5.3.0
    gloria-hallelujah@5.3.0 knewave@5.3.0 shrikhand@5.3.0
    anton@5.3.0 oswald@5.3.0 bangers@5.3.0 archivo-black@5.3.0 alfa-slab-one@5.3.0
    righteous@5.3.0 fjalla-one@5.3.0 passion-one@5.3.0 russo-one@5.3.0 black-ops-one@5.3.0
    monoton@5.3.0 abril-fatface@5.3.0 ultra@5.3.0 titan-one@5.3.0 luckiest-guy@5.3.0
    fredoka@5.3.0 special-elite@5.3.0 playfair-display@5.3.0 bree-serif@5.3.0 arvo@5.3.0
    zilla-slab@5.3.0 teko@5.3.0 rajdhani@5.3.0 orbitron@5.3.0 audiowide@5.3.0 squada-one@5.2.8
    changa-one@5.2.8 sigmar-one@5.3.0 concert-one@5.3.0 carter-one@5.3.0 lilita-one@5.3.0
    racing-sans-one@5.3.0 bungee@5.3.0 boogaloo@5.3.0 chewy@5.3.0 bevan@5.3.0
    staatliches@5.3.0 yeseva-one@5.3.0
)

command -v npm >/dev/null 2>&1 || { echo "install_display_fonts.sh: needs npm (apt-get install npm)" >&2; exit 1; }
mkdir -p "$DEST"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
new=0
for spec in "${FAMILIES[@]}"; do
    name=${spec%@*}
    out="$DEST/$name-latin-400-normal.woff"
    [ -s "$out" ] && continue
    (cd "$work" && quiet npm pack --silent "@fontsource/$spec")
    tgz=$(ls "$work"/fontsource-"$name"-*.tgz)
    tar -xzf "$tgz" -C "$work" "package/files/$name-latin-400-normal.woff"
    mv "$work/package/files/$name-latin-400-normal.woff" "$out"
    rm -rf "$work/package" "$tgz"
    new=$((new + 1))
done
echo "install_display_fonts.sh: ${#FAMILIES[@]} families in $DEST ($new new)"
