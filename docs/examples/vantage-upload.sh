#!/bin/sh
# Upload every file of a folder to Vantage, wait for the jobs, and report each file.
#
# Usage: vantage-upload.sh FOLDER [BUCKET]
#
# Environment:
#   VANTAGE_URL           the server, e.g. https://vantage.example.com (required)
#   VANTAGE_TOKEN         a service token (sk_...) with image:upload and image:read (required)
#   VANTAGE_BUCKET        the bucket when none is given as an argument (default: the server's)
#   VANTAGE_WAIT_TIMEOUT  seconds to wait for all the jobs to finish (default 600)
#   VANTAGE_MAX_RETRIES   retries of one request refused with 429 or failed in transit (default 5)
#   VANTAGE_MAX_RETRY_WAIT  the longest Retry-After worth waiting for, in seconds (default 120)
#
# Every regular, non-hidden file of FOLDER (not its subfolders) is sent; the
# server decides what is an image. Each upload carries an Idempotency-Key made
# from the bucket and the file's SHA-256, so running this again with the same
# token within 24 hours answers with the first jobs instead of uploading again.
#
# Output: one line per file on stdout, tab-separated:
#   NAME  STATUS  DETAIL
# STATUS is succeeded (DETAIL: the top label, if classified), failed (the job's
# error), rejected (refused by the server: its problem code and detail), error
# (no answer, or a server error, after the retries), or queued/running when the
# job had not finished within VANTAGE_WAIT_TIMEOUT. Progress goes to stderr.
#
# Exit status: 0 when every job succeeded; 1 when a file was not uploaded, a job
# failed or did not finish, or the server refused the token; 2 on bad usage.
#
# Needs curl and jq. The token is handed to curl on its standard input, never
# on its command line, so other users of the machine cannot read it in `ps`.

set -u

log() { printf '%s\n' "vantage-upload: $*" >&2; }
usage() { log "$*"; log "usage: vantage-upload.sh FOLDER [BUCKET]"; exit 2; }

if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage "expected a folder and an optional bucket"; fi
folder=$1
bucket=${2:-${VANTAGE_BUCKET:-}}
[ -d "$folder" ] || usage "no such folder: $folder"
[ -n "${VANTAGE_URL:-}" ] || usage "set VANTAGE_URL, e.g. https://vantage.example.com"
[ -n "${VANTAGE_TOKEN:-}" ] || usage "set VANTAGE_TOKEN to a service token"
printf '%s' "$VANTAGE_TOKEN" | grep -Eqx 'sk_[0-9a-f]{64}' \
    || usage "VANTAGE_TOKEN is not a service token (sk_ and 64 hex characters)"
wait_timeout=${VANTAGE_WAIT_TIMEOUT:-600}
max_retries=${VANTAGE_MAX_RETRIES:-5}
max_retry_wait=${VANTAGE_MAX_RETRY_WAIT:-120}
for number in "$wait_timeout" "$max_retries" "$max_retry_wait"; do
    case $number in '' | *[!0-9]*) usage "timeouts and retries must be whole numbers" ;; esac
done
for tool in curl jq; do
    command -v "$tool" >/dev/null 2>&1 || usage "$tool is required"
done
if command -v sha256sum >/dev/null 2>&1; then
    sha256() { sha256sum <"$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
    sha256() { shasum -a 256 <"$1" | cut -d' ' -f1; }
else
    sha256() { openssl dgst -sha256 <"$1" | sed 's/.*= *//'; }
fi

base=${VANTAGE_URL%/}
# Job status URLs are answered as paths; they are joined to the server's origin.
origin=$(printf '%s' "$base" | sed -E 's#^([A-Za-z][A-Za-z0-9+.-]*://[^/]+).*#\1#')

work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 1' INT TERM

# api BODY_FILE URL [CURL_OPTION...]: make one request; print its HTTP status (000: no answer).
api() {
    body_file=$1 url=$2
    shift 2
    : >"$work/headers"
    printf 'header = "Authorization: Bearer %s"\n' "$VANTAGE_TOKEN" |
        curl --silent --show-error --config - --connect-timeout 10 --max-time 300 \
            --output "$body_file" --dump-header "$work/headers" --write-out '%{http_code}' \
            "$@" "$url" 2>"$work/curl.err"
    return 0
}

# The Retry-After of the last answer in whole seconds, or nothing (absent or an HTTP date).
retry_after() {
    tr -d '\r' <"$work/headers" \
        | sed -n 's/^[Rr][Ee][Tt][Rr][Yy]-[Aa][Ff][Tt][Ee][Rr]: *\([0-9][0-9]*\) *$/\1/p' \
        | tail -n 1
}

# "CODE: detail" of a problem-details answer, or what is known without one.
problem() {
    jq -r --arg status "$2" '"\(.code // "HTTP_\($status)"): \(.detail // "no detail")"' \
        "$1" 2>/dev/null || printf 'HTTP_%s: the answer was not problem details\n' "$2"
}

# Fail the whole run: the token itself was refused, so every other request would be too.
refused() {
    log "the server refused the token: $(problem "$1" "$2")"
    exit 1
}

# upload_one DIR FILE: upload FILE (retrying what may be retried); record the outcome in DIR.
upload_one() {
    dir=$1 file=$2
    key="vantage-upload:${bucket:-default}:$(sha256 "$file")"
    escaped=$(printf '%s' "$file" | sed 's/[\\"]/\\&/g')
    set -- -H "Idempotency-Key: $key" -F "file=@\"$escaped\""
    [ -z "$bucket" ] || set -- "$@" -F "bucket=$bucket"
    attempt=0
    while :; do
        code=$(api "$dir/answer" "$base/api/v1/images/upload" "$@")
        retry=yes
        case $code in
            202)
                jq -r '.status_url' "$dir/answer" >"$dir/url"
                echo queued >"$dir/status"
                return 0 ;;
            401 | 403) refused "$dir/answer" "$code" ;;
            # CONFLICT: the same key is still being answered; IDEMPOTENCY_KEY_REUSED is final.
            409) [ "$(jq -r '.code' "$dir/answer" 2>/dev/null)" = CONFLICT ] || retry=no ;;
            000 | 429 | 500 | 502 | 503 | 504) ;;
            *) retry=no ;;
        esac
        if [ "$code" = 000 ]; then
            why="no answer: $(tail -n 1 "$work/curl.err")"
        else
            why=$(problem "$dir/answer" "$code")
        fi
        delay=$(retry_after)
        delay=${delay:-$((1 << attempt))}
        if [ "$retry" = no ] || [ "$attempt" -ge "$max_retries" ] \
            || [ "$delay" -gt "$max_retry_wait" ]; then
            case $code in 000 | 5??) echo error ;; *) echo rejected ;; esac >"$dir/status"
            printf '%s\n' "$why" >"$dir/detail"
            return 0
        fi
        attempt=$((attempt + 1))
        log "$(cat "$dir/name"): $why; retry $attempt of $max_retries in ${delay}s"
        sleep "$delay"
    done
}

# poll_one DIR: ask once for the job's status; record it, and in DIR/hint the wait asked for.
# The answer's HTTP status is left in $code.
poll_one() {
    dir=$1
    url=$(cat "$dir/url")
    case $url in http://* | https://*) ;; *) url="$origin$url" ;; esac
    code=$(api "$dir/job" "$url")
    case $code in
        200)
            jq -r '.status' "$dir/job" >"$dir/status"
            jq -r 'if .status == "succeeded" then (.result.classification.top_label // "")
                elif .status == "failed"
                then "\(.error.code // "FAILED"): \(.error.message // "")"
                else "" end' "$dir/job" >"$dir/detail" ;;
        401 | 403) refused "$dir/job" "$code" ;;
        404) echo failed >"$dir/status"; problem "$dir/job" "$code" >"$dir/detail" ;;
        *) ;;  # 429, 5xx, no answer: ask again later
    esac
    retry_after >"$dir/hint"
}

count=0
for file in "$folder"/*; do
    [ -f "$file" ] || continue
    count=$((count + 1))
    dir="$work/$count"
    mkdir "$dir"
    basename "$file" >"$dir/name"
    : >"$dir/detail"
    upload_one "$dir" "$file"
    log "$(cat "$dir/name"): $(cat "$dir/status")"
done
if [ "$count" -eq 0 ]; then
    log "no files in $folder; nothing to upload"
    exit 0
fi

unfinished() { case $(cat "$1/status") in queued | running) return 0 ;; esac; return 1; }

deadline=$(($(date +%s) + wait_timeout))
while :; do
    pause=
    index=0
    while [ "$index" -lt "$count" ]; do
        index=$((index + 1))
        dir="$work/$index"
        unfinished "$dir" || continue
        poll_one "$dir"
        unfinished "$dir" || continue
        hint=$(cat "$dir/hint")
        hint=${hint:-2}
        # Refused for the rate: every other job would be too, until the Retry-After.
        if [ "$code" = 429 ]; then pause=$hint; break; fi
        if [ -z "$pause" ] || [ "$hint" -lt "$pause" ]; then pause=$hint; fi
    done
    pending=0
    index=0
    while [ "$index" -lt "$count" ]; do
        index=$((index + 1))
        if unfinished "$work/$index"; then pending=$((pending + 1)); fi
    done
    [ "$pending" -gt 0 ] || break
    left=$((deadline - $(date +%s)))
    if [ "$left" -le 0 ]; then
        log "$pending job(s) did not finish within ${wait_timeout}s"
        break
    fi
    [ "$pause" -ge 1 ] || pause=1
    [ "$pause" -le "$left" ] || pause=$left
    log "$pending job(s) not finished; asking again in ${pause}s"
    sleep "$pause"
done

succeeded=0
index=0
while [ "$index" -lt "$count" ]; do
    index=$((index + 1))
    dir="$work/$index"
    status=$(cat "$dir/status")
    [ "$status" != succeeded ] || succeeded=$((succeeded + 1))
    printf '%s\t%s\t%s\n' "$(cat "$dir/name")" "$status" "$(cat "$dir/detail")"
done
log "$succeeded of $count file(s) succeeded"
[ "$succeeded" -eq "$count" ]
