#!/usr/bin/env bash
# A CPU Vulkan driver for ManiSkill3 (which needs Vulkan even for state observations), without touching the
# system: Mesa 25's lavapipe from Debian bookworm-backports, downloaded and unpacked into a project folder.
#
#   scripts/maniskill_vulkan.sh [DIR]        # default DIR: .vulkan (ignored by git)
#   source DIR/env.sh                        # sets VK_ICD_FILENAMES and LD_LIBRARY_PATH for this shell
#
# Not needed on a machine with a real Vulkan driver (a GPU). Bookworm's own Mesa 22 lavapipe is refused by
# ManiSkill ("Failed to find a supported physical device"); Mesa 25 works.
set -euo pipefail

DIR="$(realpath -m "${1:-.vulkan}")"
MESA_VERSION="${MESA_VERSION:-25.0.7-2~bpo12+1}"
if [[ -f "$DIR/env.sh" ]]; then
    echo "lavapipe already set up in $DIR (source $DIR/env.sh)"
    exit 0
fi
for tool in apt-get dpkg; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found: this set-up needs a Debian/Ubuntu system" >&2; exit 1; }
done

APT="$DIR/apt"
mkdir -p "$APT/sources" "$APT/lists/partial" "$APT/cache/archives/partial" "$DIR/debs" "$DIR/root"
# the machine's own Debian mirror and key, with the backports suite
cat > "$APT/sources/backports.sources" <<SOURCES
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
OPTIONS=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$APT/sources"
         -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -o "Debug::NoLocking=1")
apt-get "${OPTIONS[@]}" update -qq
(cd "$DIR/debs" && apt-get "${OPTIONS[@]}" download -qq "mesa-vulkan-drivers=$MESA_VERSION" \
    libdrm2/bookworm-backports libdrm-amdgpu1/bookworm-backports)
for deb in "$DIR"/debs/*.deb; do
    dpkg -x "$deb" "$DIR/root"
done
LIB="$(dirname "$(find "$DIR/root" -name libvulkan_lvp.so | head -1)")"
[[ -f "$LIB/libvulkan_lvp.so" ]] || { echo "error: libvulkan_lvp.so not found in the unpacked packages" >&2; exit 1; }
cat > "$DIR/lvp_icd.json" <<ICD
{"file_format_version": "1.0.0", "ICD": {"library_path": "$LIB/libvulkan_lvp.so", "api_version": "1.3.0"}}
ICD
cat > "$DIR/env.sh" <<ENV
export VK_ICD_FILENAMES="$DIR/lvp_icd.json"
export LD_LIBRARY_PATH="$LIB:$DIR/root/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
ENV
rm -rf "$APT"
echo "lavapipe (Mesa $MESA_VERSION) in $DIR; use it with: source $DIR/env.sh"
