#!/usr/bin/env bash
# Install SoftHSM2 (Debian/Ubuntu) and optionally initialise a fresh token for paygate's PKCS#11 key provider.
#
# Usage:
#   scripts/install-softhsm.sh                       # only make sure SoftHSM2 is installed
#   scripts/install-softhsm.sh DIR [LABEL] [PIN] [SO_PIN]
#       also create DIR/softhsm2.conf + DIR/tokens/ and initialise a token there (idempotent: an existing
#       token with LABEL is left alone). Then:  export SOFTHSM2_CONF=DIR/softhsm2.conf
#
# Environment: PAYGATE_SOFTHSM_LIB overrides the module path (default /usr/lib/softhsm/libsofthsm2.so).
# Safe to run repeatedly; only calls apt-get when the module is missing. Needs root (or sudo) for apt-get.
set -euo pipefail

LIB="${PAYGATE_SOFTHSM_LIB:-/usr/lib/softhsm/libsofthsm2.so}"

if [[ ! -f "$LIB" ]] || ! command -v softhsm2-util >/dev/null 2>&1; then
    SUDO=""
    if [[ "$(id -u)" != "0" ]]; then
        SUDO="sudo"
    fi
    echo "installing softhsm2 ..." >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq softhsm2 >/dev/null
fi

if [[ ! -f "$LIB" ]]; then
    echo "error: SoftHSM2 module not found at $LIB after install" >&2
    exit 1
fi
echo "SoftHSM2 module: $LIB" >&2

if [[ $# -ge 1 ]]; then
    DIR="$1"
    LABEL="${2:-paygate}"
    PIN="${3:-1234}"
    SO_PIN="${4:-123456}"
    mkdir -p "$DIR/tokens"
    chmod 700 "$DIR" "$DIR/tokens"
    CONF="$DIR/softhsm2.conf"
    cat > "$CONF" <<CONF_EOF
directories.tokendir = $DIR/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF_EOF
    export SOFTHSM2_CONF="$CONF"
    if softhsm2-util --show-slots 2>/dev/null | grep -Eq "^[[:space:]]*Label:[[:space:]]+${LABEL}[[:space:]]*$"; then
        echo "token '$LABEL' already initialised in $DIR" >&2
    else
        softhsm2-util --init-token --free --label "$LABEL" --pin "$PIN" --so-pin "$SO_PIN" >&2
    fi
    echo "export SOFTHSM2_CONF=$CONF"
fi
