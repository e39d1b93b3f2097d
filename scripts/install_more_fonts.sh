#!/usr/bin/env bash
# Install 404 more Google Fonts families for `crnn synth --style scene` from the npm registry.
#
# Why: the benchmarks kept aside fail most on signage faces (scripts, flourished serifs, fat
# italics, condensed, slab, stencil, techno; ../shared/design/failure_classes.md). With ~120
# Debian families and the 61 of scripts/install_display_fonts.sh, a model sees few of them.
# Each family is published as @fontsource/<name>; its tarball carries
# files/<name>-latin-<weight>-normal.woff, which Pillow's FreeType renders. This script keeps the
# regular weight (400, or the nearest one above it when a family has no 400) and the bold (700)
# when there is one.
#
# The list is every @fontsource family of the registry's listing except: the 61 families of
# install_display_fonts.sh and those Debian packages already give (scripts/install_fonts.sh),
# icon/emoji/symbol/maths/barcode/redacted faces, and families made for CJK, Arabic, Hebrew,
# Indic or Thai scripts (tens of MB each for a Latin subset the others already cover).
# `crnn synth` checks every file again and drops those that do not draw all of [0-9a-zA-Z]
# distinctly (src/crnn/synth/fonts.py).
#
# Usage:  scripts/install_more_fonts.sh [DEST]   (default DEST: /usr/local/share/crnn/fonts;
#         deliberately outside the folders the other styles scan, so their output does not change)
# Idempotent (a family whose regular file is present is skipped); versions are pinned. Needs
# `npm`. About 4 minutes on a fresh machine (measured on a busy 2-core one); CI and the tests do not
# need it. Quiet unless VERBOSE=1.
set -euo pipefail
. "$(dirname "$0")/quiet_run.sh"

DEST="${1:-/usr/local/share/crnn/fonts}"
FAMILIES=(
    abeezee@5.3.0 abel@5.3.0 abhaya-libre@5.3.0 aboreto@5.3.0 acme@5.3.0 actor@5.3.0 adamina@5.2.7
    afacad@5.3.0 aileron@5.3.0 alata@5.3.0 albert-sans@5.3.0 aldrich@5.3.0 alegreya@5.3.0
    alegreya-sans@5.3.0 aleo@5.3.0 alex-brush@5.3.0 alexandria@5.3.0 alice@5.3.0 allan@5.3.0
    alumni-sans@5.3.0 amaranth@5.2.8 annie-use-your-telescope@5.3.0 anonymous-pro@5.3.0
    antonio@5.3.0 anuphan@5.3.0 anybody@5.3.0 apfel-grotezk@5.3.0 archivo@5.3.0 archivo-narrow@5.3.0
    aref-ruqaa@5.3.0 arsenal@5.3.0 asap@5.3.0 asap-condensed@5.3.0 assistant@5.3.0
    atkinson-hyperlegible@5.3.0 atkinson-hyperlegible-mono@5.3.0 atkinson-hyperlegible-next@5.3.0
    aubrey@5.1.0 average-sans@5.2.8 azeret-mono@5.3.0 b612@5.3.0 b612-mono@5.3.0 bad-script@5.3.0
    bai-jamjuree@5.3.0 baloo-2@5.3.0 balsamiq-sans@5.3.0 barlow@5.3.0 barlow-condensed@5.3.0
    barlow-semi-condensed@5.3.0 basic@5.3.0 be-vietnam@4.5.2 be-vietnam-pro@5.3.0 belleza@5.3.0
    berkshire-swash@5.3.0 besley@5.3.0 big-shoulders-display@5.3.0 big-shoulders-text@5.3.0
    birthstone@5.3.0 biryani@4.5.10 bitter@5.3.0 blinker@5.3.0 bodoni-moda@5.3.0 brawler@5.3.0
    bricolage-grotesque@5.3.0 bubblegum-sans@5.3.0 bungee-shade@5.3.0 cabin-sketch@5.3.0
    cal-sans@5.3.0 calistoga@5.2.7 caprasimo@5.3.0 cardo@5.3.0 cascadia-code@5.3.0 catamaran@5.3.0
    caveat-brush@5.3.0 cedarville-cursive@5.3.0 chakra-petch@5.3.0 changa@5.3.0 chilanka@5.3.0
    chivo@5.3.0 cinzel@5.3.0 cinzel-decorative@5.3.0 clear-sans@5.3.0 climate-crisis@5.3.0
    coiny@5.3.0 comfortaa@5.3.0 comic-mono@5.2.5 comic-relief@5.3.0 commissioner@5.3.0
    commit-mono@5.3.0 condiment@4.5.1 cooper-hewitt@5.3.0 corinthia@5.3.0 cormorant@5.3.0
    cormorant-garamond@5.3.0 cormorant-infant@5.3.0 covered-by-your-grace@5.3.0 creepster@5.3.0
    crimson-pro@5.3.0 crimson-text@5.3.0 darker-grotesque@5.3.0 days-one@5.2.7 dela-gothic-one@5.3.0
    delicious-handrawn@5.3.0 delius@5.3.0 didact-gothic@5.3.0 dm-mono@5.3.0 dm-sans@5.3.0
    dm-serif-display@5.3.0 dm-serif-text@5.3.0 domine@5.3.0 dosis@5.3.0 doto@5.3.0 encode-sans@5.3.0
    encode-sans-condensed@5.3.0 encode-sans-semi-expanded@5.3.0 ephesis@5.3.0 epilogue@5.3.0
    esteban@5.3.0 ewert@5.3.0 exo@5.3.0 exo-2@5.3.0 fahkwang@5.3.0 familjen-grotesk@5.3.0
    farsan@5.3.0 faustina@5.3.0 figtree@5.3.0 finger-paint@5.3.0 fira-mono@5.3.0 fira-sans@5.3.0
    fira-sans-condensed@5.3.0 fira-sans-extra-condensed@5.3.0 firago@5.3.0 fragment-mono@5.3.0
    frank-ruhl-libre@5.3.0 fraunces@5.3.0 fredericka-the-great@5.3.0 fredoka-one@5.3.0
    freehand@5.2.8 funnel-display@5.3.0 funnel-sans@5.3.0 gabarito@5.3.0 geist@5.3.0
    geist-mono@5.3.0 geist-sans@5.3.0 gelasio@5.3.0 geologica@5.3.0 germania-one@5.3.0
    gfs-didot@5.3.0 gloock@5.3.0 gochi-hand@5.3.0 goldman@5.3.0 golos-text@5.3.0
    google-sans@5.3.1 google-sans-code@5.3.1 google-sans-flex@5.3.1 graduate@5.3.0 grand-hotel@5.3.0
    grandstander@5.3.0 halant@5.3.0 handlee@5.3.0 hanken-grotesk@5.3.0 hanuman@5.3.0
    happy-monkey@5.2.8 headland-one@5.3.0 hedvig-letters-serif@5.3.0 heebo@5.3.0 hepta-slab@5.3.0
    herr-von-muellerhoff@5.3.0 hind@5.3.0 hind-madurai@5.3.0 hind-vadodara@5.3.0
    homemade-apple@5.3.0 host-grotesk@5.3.0 ia-writer-mono@5.3.0 ia-writer-quattro@5.3.0
    ibm-plex-sans-condensed@5.3.0 iceberg@5.2.8 iceland@5.2.8 im-fell-english@5.3.0
    inclusive-sans@5.3.0 inder@5.3.0 inika@5.3.0 inknut-antiqua@5.3.0 instrument-sans@5.3.0
    instrument-serif@5.3.0 inter-tight@5.3.0 italiana@5.3.0 italianno@5.3.0 itim@5.3.0
    jersey-10@5.3.0 jockey-one@5.2.7 josefin-sans@5.3.0 jost@5.3.0 jura@5.3.0 k2d@5.2.8 karla@5.3.0
    karma@5.1.0 khand@5.3.0 kode-mono@5.3.0 krona-one@5.3.0 kumbh-sans@5.3.0 league-gothic@5.3.0
    lekton@5.3.0 lemonada@5.3.0 lexend@5.3.0 lexend-deca@5.3.0 lexend-exa@5.3.0 lexend-zetta@5.3.0
    libre-baskerville@5.3.0 libre-caslon-condensed@5.3.0 libre-caslon-text@5.3.0
    libre-franklin@5.3.0 licorice@5.3.0 literata@5.3.0 londrina-solid@5.3.0 lora@5.3.0 lustria@5.3.0
    manrope@5.3.0 mansalva@5.3.0 maple-mono@5.3.0 marcellus@5.3.0 martel@5.3.0 maven-pro@5.3.0
    medievalsharp@5.3.0 merriweather@5.3.0 merriweather-sans@5.3.0 metropolis@5.3.0 michroma@5.3.0
    micro-5@5.3.0 modak@5.3.0 momo-trust-display@5.3.0 mona-sans@5.3.0 monaspace-krypton@5.2.5
    monaspace-neon@5.3.0 monda@5.3.0 monofett@5.3.0 monsieur-la-doulaise@5.3.0 montecarlo@5.2.8
    montserrat-alternates@5.3.0 mouse-memoirs@5.2.7 mr-de-haviland@5.3.0 ms-madi@5.3.0 mukta@5.3.0
    muli@4.1.0 mulish@5.3.0 museomoderno@5.3.0 neucha@5.3.0 newsreader@5.3.0 norwester@5.3.0
    nosifer@5.3.0 noto-sans-display@5.3.0 noto-sans-mono@5.3.0 noto-serif-display@5.3.0
    nova-script@4.5.7 nova-square@5.2.8 nunito@5.3.0 nunito-sans@5.3.0 onest@5.3.1 oooh-baby@5.3.0
    open-sans-condensed@4.5.5 open-sauce-one@5.3.0 open-sauce-sans@5.3.0 opendyslexic@5.3.0
    orienta@5.2.8 outfit@5.3.0 overpass@5.3.0 overpass-mono@5.3.0 ovo@5.3.0 oxanium@5.3.0
    oxygen@5.3.0 parisienne@5.3.0 pathway-extreme@5.0.12 patua-one@5.3.0 paytone-one@5.3.0
    petrona@5.3.0 philosopher@5.3.0 piazzolla@5.3.0 pinyon-script@5.3.0 pixelify-sans@5.3.0
    playfair@5.3.0 playpen-sans@5.3.0 plus-jakarta-sans@5.3.0 poiret-one@5.3.0 poly@5.3.0
    poppins@5.3.0 prata@5.3.0 press-start-2p@5.3.0 prompt@5.3.0 pt-mono@5.3.0 pt-sans@5.3.0
    pt-sans-caption@5.3.0 pt-sans-narrow@5.3.0 pt-serif@5.3.0 pt-serif-caption@5.2.8
    public-sans@5.3.0 purple-purse@4.5.9 quantico@5.3.0 quattrocento@5.3.0 questrial@5.3.0
    radio-canada-big@5.3.0 raleway@5.3.0 rammetto-one@5.3.0 rasa@5.3.0 readex-pro@5.3.0
    recursive@5.3.0 red-hat-display@5.3.0 red-hat-mono@5.3.0 red-hat-text@5.3.0 redaction-10@5.3.0
    reddit-mono@5.3.0 reddit-sans@5.3.0 reenie-beanie@5.3.0 rethink-sans@5.3.0 roboto-flex@5.3.0
    roboto-serif@5.3.0 rochester@5.3.0 rokkitt@5.3.0 rowdies@5.3.0 rubik@5.3.0 rubik-mono-one@5.3.0
    rubik-one@5.3.0 rufina@5.3.0 saira@5.3.0 saira-condensed@5.3.0 saira-extra-condensed@5.3.0
    saira-semi-condensed@5.3.0 saira-stencil-one@5.3.0 sanchez@5.3.0 sansita@5.3.0 sarabun@5.3.0
    schibsted-grotesk@5.3.0 schoolbell@5.3.0 science-gothic@5.3.0 sen@5.3.0 shantell-sans@5.3.0
    share-tech@5.3.0 share-tech-mono@5.3.0 short-stack@5.3.0 signika@5.3.0 silkscreen@5.3.0
    slabo-13px@5.3.0 slabo-27px@5.3.0 smooch@5.3.0 sn-pro@5.3.0 sniglet@5.3.0 sofia-sans@5.3.0
    sometype-mono@5.3.0 sora@5.3.0 sorts-mill-goudy@5.3.0 source-code-pro@5.3.0 source-sans-3@5.3.0
    source-sans-pro@5.3.0 source-serif-4@5.3.1 source-serif-pro@5.3.0 space-grotesk@5.3.0
    space-mono@5.3.0 spartan@4.5.8 special-gothic-expanded-one@5.3.0 spectral@5.3.0 spicy-rice@5.3.0
    spline-sans@5.3.0 spline-sans-mono@5.3.0 sriracha@5.3.0 stack-sans-headline@5.3.0
    stack-sans-notch@5.3.0 stack-sans-text@5.3.0 stix-two-text@5.3.0 sue-ellen-francisco@5.3.0
    suez-one@5.3.0 swanky-and-moo-moo@5.3.0 syncopate@5.3.0 syne@5.3.0 tangerine@5.3.0
    tasa-orbiter@5.3.0 taviraj@5.3.0 tenor-sans@5.3.0 the-girl-next-door@5.3.0 tiktok-sans@5.3.0
    tiny5@5.3.0 titillium-web@5.3.0 tomorrow@5.3.0 twinkle-star@5.3.0 unbounded@5.3.0
    uncial-antiqua@5.3.0 uncut-sans@5.3.0 unifrakturcook@5.3.0 unifrakturmaguntia@5.3.0 unna@5.3.0
    urbanist@5.3.0 varela@5.3.0 varela-round@5.3.0 vibur@5.3.0 victor-mono@5.3.0 volkhov@5.3.0
    vollkorn@5.3.0 vt323@5.3.0 whisper@5.3.0 wix-madefor-display@5.3.0 wix-madefor-text@5.3.0
    work-sans@5.3.0 yantramanav@5.3.0 yrsa@5.3.0 zain@5.3.0 zalando-sans-expanded@5.3.0
)

command -v npm >/dev/null 2>&1 || { echo "install_more_fonts.sh: needs npm (apt-get install npm)" >&2; exit 1; }
mkdir -p "$DEST"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

todo=()
for spec in "${FAMILIES[@]}"; do
    name=${spec%@*}
    compgen -G "$DEST/$name-latin-[0-9]*-normal.woff" >/dev/null || todo+=("$spec")
done

# Unpack one tarball: the regular weight (400, else the nearest above, else any) and 700.
extract() {
    local name=$1 tgz=$2 regular="" w
    local listing
    listing=$(tar -tzf "$tgz")
    for w in 400 500 300 600 700 800 900 200 100; do
        if grep -qx "package/files/$name-latin-$w-normal.woff" <<<"$listing"; then
            regular=$w
            break
        fi
    done
    if [ -z "$regular" ]; then
        echo "install_more_fonts.sh: $name has no latin .woff, skipped" >&2
        return 1
    fi
    local want=("package/files/$name-latin-$regular-normal.woff")
    if [ "$regular" != 700 ] && grep -qx "package/files/$name-latin-700-normal.woff" <<<"$listing"; then
        want+=("package/files/$name-latin-700-normal.woff")
    fi
    tar -xzf "$tgz" -C "$work" "${want[@]}"
    mv "$work"/package/files/*.woff "$DEST/"
    rm -rf "$work/package"
}

new=0
# npm pack takes many names at once: one node start-up per batch instead of per family.
for ((i = 0; i < ${#todo[@]}; i += 40)); do
    batch=("${todo[@]:i:40}")
    if ! (cd "$work" && quiet npm pack --silent "${batch[@]/#/@fontsource/}"); then
        # one bad name must not cost the others: retry one by one, skipping failures
        for spec in "${batch[@]}"; do
            (cd "$work" && quiet npm pack --silent "@fontsource/$spec") || echo "install_more_fonts.sh: @fontsource/$spec failed, skipped" >&2
        done
    fi
    for spec in "${batch[@]}"; do
        name=${spec%@*}
        tgz="$work/fontsource-$name-${spec#*@}.tgz"
        [ -f "$tgz" ] || continue
        if extract "$name" "$tgz"; then
            new=$((new + 1))
        fi
        rm -f "$tgz"
    done
done
nfiles=$(find "$DEST" -name '*.woff' | wc -l)
echo "install_more_fonts.sh: ${#FAMILIES[@]} families listed, $new new; $nfiles .woff files in $DEST"
