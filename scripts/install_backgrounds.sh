#!/usr/bin/env bash
# Install the photographs and textures that `crnn synth --style scene` puts behind words.
#
# Why: real crops show bricks, foliage, wood, paper and sky behind the letters; the procedural
# backgrounds of src/crnn/synth/effects.py do not. Debian ships photo wallpapers; the ones below
# were looked at one by one: no people, no readable text or logos (text in a background would
# be drawn into a crop whose label does not mention it). Left out on purpose: sway-backgrounds
# and ukui-wallpapers (logos and words), gnome-backgrounds' abstract images, mate-backgrounds'
# abstract/desktop folders (MATE logos), greentock (a clock face with numeral-like marks) and
# Wine (a bottle label) from lomiri-wallpapers-16.04.
#
# Packages and licences (Debian 12, /usr/share/doc/<pkg>/copyright):
#   mate-backgrounds 1.26.0-1        nature/*.jpg: GPL-2+ (12 photos: flowers, grass, water, wood, dunes)
#   lomiri-wallpapers-16.04 20.04.0-2  photos: CC-BY-4.0, CC-BY-SA-4.0, CC0-1.0 (13 used)
#   mypaint-data-extras 2.0.1-9      backgrounds/: GPL-2+ (17 paper, canvas, cork textures)
#   gnome-backgrounds 43.1-1         wood-d/l.webp: GPL-2+ (the package licence; no separate author listed; 2 used)
#
# The chosen files are linked into one folder, DEST (default /usr/local/share/crnn/backgrounds),
# which is what `crnn synth` reads (src/crnn/synth/backgrounds.py). Not needed by the tests or
# by the other styles. Usage (as root or with sudo):  scripts/install_backgrounds.sh [DEST]
# Idempotent. SKIP_APT_UPDATE=1 skips `apt-get update`. Quiet unless VERBOSE=1.
set -euo pipefail
. "$(dirname "$0")/quiet_run.sh"

as_root "$@"

DEST="${1:-/usr/local/share/crnn/backgrounds}"
PACKAGES=(mate-backgrounds lomiri-wallpapers-16.04 mypaint-data-extras gnome-backgrounds)
FILES=(
    /usr/share/backgrounds/mate/nature/{Aqua,Blinds,Dune,FreshFlower,Garden,GreenMeadow}.jpg
    /usr/share/backgrounds/mate/nature/{LadyBird,RainDrops,Storm,TwoWings,Wood,YellowFlower}.jpg
    /usr/share/backgrounds/{Bridge_by_Sander_Klootwijk,Dragonfly_by_Bolly,Picture_0B_by_freespace}.jpg
    /usr/share/backgrounds/{Picture_1A_by_freespace,aitzgorri_by_Aitzol_Berasategi}.jpg
    /usr/share/backgrounds/{analogpattern_by_Peter_Nerlich,free_by_Peter_Nerlich}.jpg
    /usr/share/backgrounds/{friends_by_Aitzol_Berasategi,life_by_Aitzol_Berasategi}.jpg
    /usr/share/backgrounds/{picosdeeuropa_by_Aitzol_Berasategi,seeding_by_Clements_Engelhardt}.jpg
    /usr/share/backgrounds/{sunset_by_Aitzol_Berasategi,umang_by_Abhishek_Mudgal}.jpg
    /usr/share/mypaint/backgrounds/mrmamurk/mamurk_{a_1,a_2,b_1,c_3,e_1,e_2,f_1}.png
    "/usr/share/mypaint/backgrounds/ramon/HR_Canvas 01.png" "/usr/share/mypaint/backgrounds/ramon/HR_Canvas 02.png"
    /usr/share/mypaint/backgrounds/ramon/HR_{Cork,DecoPaper,RoughPaper,SketchPaper,WaterColor}.png
    "/usr/share/mypaint/backgrounds/ramon/HR_PastelPaper 01.png" "/usr/share/mypaint/backgrounds/ramon/HR_PastelPaper 02.png"
    "/usr/share/mypaint/backgrounds/ramon/HR_SketchPaper 02.png"
    /usr/share/backgrounds/gnome/wood-{d,l}.webp
)

export DEBIAN_FRONTEND=noninteractive
missing=0
for f in "${FILES[@]}"; do [ -f "$f" ] || missing=1; done
if [ "$missing" = 1 ]; then
    if [ "${SKIP_APT_UPDATE:-0}" != "1" ]; then
        quiet apt-get update -qq
    fi
    quiet apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
fi

mkdir -p "$DEST"
n=0
for f in "${FILES[@]}"; do
    if [ ! -f "$f" ]; then
        echo "install_backgrounds.sh: $f missing after installing ${PACKAGES[*]}" >&2
        exit 1
    fi
    # the package folder name keeps names unique; spaces become underscores
    name=$(basename "$(dirname "$f")")_$(basename "$f" | tr ' ' _)
    ln -sfn "$f" "$DEST/$name"
    n=$((n + 1))
done
echo "install_backgrounds.sh: $n background images linked in $DEST"
