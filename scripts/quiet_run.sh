# Sourced by the install scripts. `as_root "$@"` re-runs the calling script with sudo when not root
# (or stops with one line). `quiet CMD ...` runs CMD with its output in a log file, shown only
# when CMD fails (its last 40 lines and the log's path); VERBOSE=1 shows everything as it happens.
# LOG=path puts the log elsewhere (default: $TMPDIR or /tmp / crnn-<script>.log, overwritten each run).
CRNN_LOG="${LOG:-${TMPDIR:-/tmp}/crnn-$(basename "$0" .sh).log}"
: >"$CRNN_LOG"

quiet() {
    if [ "${VERBOSE:-0}" = "1" ]; then
        "$@"
        return
    fi
    if ! "$@" >>"$CRNN_LOG" 2>&1; then
        echo "$(basename "$0"): failed: $* -- last lines of $CRNN_LOG:" >&2
        tail -n 40 "$CRNN_LOG" >&2
        return 1
    fi
}

as_root() {
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            exec sudo -E "$0" "$@"
        fi
        echo "$(basename "$0"): must run as root (or with sudo available)" >&2
        exit 1
    fi
}
