#!/usr/bin/env bash
# Run a command with a Vulkan driver for ManiSkill3:
#
#   scripts/with_vulkan.sh pytest ...
#
# With an NVIDIA GPU (nvidia-smi works) the system's driver is used and nothing is set up. Otherwise the
# project-local Mesa lavapipe in ${SWIRL_VULKAN_DIR:-.vulkan} is set up once (scripts/maniskill_vulkan.sh)
# and its environment (VK_ICD_FILENAMES, LD_LIBRARY_PATH) is exported for the command.
set -euo pipefail
if ! { command -v nvidia-smi >/dev/null && nvidia-smi >/dev/null 2>&1; }; then
    DIR="${SWIRL_VULKAN_DIR:-.vulkan}"
    [[ -f "$DIR/env.sh" ]] || "$(dirname "$0")/maniskill_vulkan.sh" "$DIR"
    # shellcheck disable=SC1091
    source "$DIR/env.sh"
fi
exec "$@"
