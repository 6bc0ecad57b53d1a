#!/bin/sh
# Renew the service token this job holds: rotate it when it expires soon; print the successor.
#
# Usage: vantage-rotate.sh [--force] [--days N] [--grace-seconds N]
#
# Environment:
#   VANTAGE_URL            the server, e.g. https://vantage.example.com (required)
#   VANTAGE_TOKEN          the token to renew, with the scope token:self_rotate (required)
#   VANTAGE_ROTATE_DAYS    rotate when the token expires within this many days (default 14)
#   VANTAGE_GRACE_SECONDS  how long the current token keeps working after the rotation,
#                          0 to 86400 (default 3600); store the successor within it
#
# --days and --grace-seconds override the environment. A token that has been
# rotated already (status rotating: a successor exists) is not rotated again:
# the run fails, saying until when the token still works. --force rotates now,
# whatever the expiry, and even a token rotated already, which makes the server
# revoke its whole rotation family, the successor included (a rotated token
# presented again is taken for a stolen copy): a way to cut a leaked token off.
#
# Output: when the token was rotated, the successor's secret alone on one line
# of stdout, once the successor has been seen to work; nothing on stdout when
# no rotation was due. Everything else goes to stderr, which never shows a secret.
#
# Exit status: 0 when rotated or when nothing was due; 1 on any failure (then
# stdout is empty and there is nothing to store); 2 on bad usage.
#
# Never run two of these at once with the same token: the second would present
# a token rotated already, and the whole family would be revoked.
#
# Needs curl and jq. Tokens are handed to curl on its standard input, never on
# its command line, so other users of the machine cannot read them in `ps`.

set -u

log() { printf '%s\n' "vantage-rotate: $*" >&2; }
fail() { log "$*"; exit 1; }
usage() {
    log "$*"
    log "usage: vantage-rotate.sh [--force] [--days N] [--grace-seconds N]"
    exit 2
}

force=no
days=${VANTAGE_ROTATE_DAYS:-14}
grace=${VANTAGE_GRACE_SECONDS:-3600}
while [ $# -gt 0 ]; do
    case $1 in
        --force) force=yes ;;
        --days) [ $# -ge 2 ] || usage "--days needs a number"; days=$2; shift ;;
        --grace-seconds) [ $# -ge 2 ] || usage "--grace-seconds needs a number"; grace=$2; shift ;;
        *) usage "unknown argument: $1" ;;
    esac
    shift
done
for number in "$days" "$grace"; do
    case $number in '' | *[!0-9]*) usage "days and grace seconds must be whole numbers" ;; esac
done
[ "$grace" -le 86400 ] || usage "the grace period is at most 86400 seconds"
[ -n "${VANTAGE_URL:-}" ] || usage "set VANTAGE_URL, e.g. https://vantage.example.com"
[ -n "${VANTAGE_TOKEN:-}" ] || usage "set VANTAGE_TOKEN to the service token to renew"
well_formed() { printf '%s' "$1" | grep -Eqx 'sk_[0-9a-f]{64}'; }
well_formed "$VANTAGE_TOKEN" \
    || usage "VANTAGE_TOKEN is not a service token (sk_ and 64 hex characters)"
for tool in curl jq; do
    command -v "$tool" >/dev/null 2>&1 || usage "$tool is required"
done

base=${VANTAGE_URL%/}
umask 077  # the answer to the rotation holds the new secret until this script ends
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 1' INT TERM

# api TOKEN BODY_FILE URL [CURL_OPTION...]: make one request; print its HTTP status (000: none).
api() {
    token=$1 body_file=$2 url=$3
    shift 3
    : >"$work/headers"
    printf 'header = "Authorization: Bearer %s"\n' "$token" |
        curl --silent --show-error --config - --connect-timeout 10 --max-time 60 \
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
    if [ "$2" = 000 ]; then
        printf 'no answer: %s\n' "$(tail -n 1 "$work/curl.err")"
        return 0
    fi
    jq -r --arg status "$2" '"\(.code // "HTTP_\($status)"): \(.detail // "no detail")"
        + ([.errors[]? | " \(.field): \(.message)"] | join(";"))' "$1" 2>/dev/null \
        || printf 'HTTP_%s: the answer was not problem details\n' "$2"
}

# self_get TOKEN BODY_FILE: GET tokens/self, retrying what may be retried; print the status.
self_get() {
    attempt=0
    while :; do
        code=$(api "$1" "$2" "$base/api/v1/tokens/self")
        case $code in 000 | 429 | 500 | 502 | 503 | 504) ;; *) break ;; esac
        delay=$(retry_after)
        delay=${delay:-$((1 << attempt))}
        if [ "$attempt" -ge 5 ] || [ "$delay" -gt 120 ]; then break; fi
        attempt=$((attempt + 1))
        log "tokens/self: $(problem "$2" "$code"); asking again in ${delay}s"
        sleep "$delay"
    done
    echo "$code"
}

# 1. What the token is, and whether it is due.
code=$(self_get "$VANTAGE_TOKEN" "$work/self.json")
if [ "$code" != 200 ]; then
    why=$(problem "$work/self.json" "$code")
    case $why in
        TOKEN_REVOKED:*) fail "the token is revoked ($why). If it was rotated, its successor" \
            "is the token to use; if a rotated token was presented again, its whole rotation" \
            "family was revoked and an organization admin must create a new token." ;;
        TOKEN_EXPIRED:*) fail "the token has expired ($why); an organization admin must create" \
            "a new one." ;;
        *) fail "could not read the token's own record: $why" ;;
    esac
fi
name=$(jq -r '.name' "$work/self.json")
prefix=$(jq -r '.prefix' "$work/self.json")
expires_at=$(jq -r '.expires_at' "$work/self.json")
jq -e 'any(.scopes[]?; . == "token:self_rotate")' "$work/self.json" >/dev/null \
    || fail "the token $name ($prefix...) lacks the scope token:self_rotate; an admin with" \
        "token:manage must create one that has it"
# Fractions of a second are dropped: jq reads ISO 8601 only without them.
left=$(jq -r '.expires_at | sub("\\.[0-9]+"; "") | sub("\\+00:00$"; "Z") | fromdateiso8601
    - now | floor' "$work/self.json") || fail "could not read the expiry $expires_at"
if [ "$(jq -r '.status' "$work/self.json")" = rotating ]; then
    grace_until=$(jq -r '.grace_until' "$work/self.json")
    [ "$force" = yes ] || fail "$name ($prefix...) has been rotated already and stops working" \
        "at $grace_until: use its successor. If the successor was lost, an organization admin" \
        "must create a new token; rotating this one again (--force) revokes its whole rotation" \
        "family, the successor included."
    log "$name ($prefix...) has been rotated already: rotating it again (--force) revokes its" \
        "whole rotation family"
elif [ "$force" = no ] && [ "$left" -ge $((days * 86400)) ]; then
    log "$name ($prefix...) expires at $expires_at, in $((left / 86400)) days: not rotated" \
        "(rotation is due within $days days; --force rotates now)"
    exit 0
fi

# 2. The successor. A request with no answer is not repeated: it may have been carried
# out, and a second rotation with this token would then revoke the family.
attempt=0
while :; do
    code=$(api "$VANTAGE_TOKEN" "$work/rotated.json" "$base/api/v1/tokens/self/rotate" \
        -X POST -H 'Content-Type: application/json' --data "{\"grace_seconds\": $grace}")
    [ "$code" = 429 ] || break
    delay=$(retry_after)
    if [ "$attempt" -ge 5 ] || [ -z "$delay" ] || [ "$delay" -gt 120 ]; then break; fi
    attempt=$((attempt + 1))
    log "rotation: $(problem "$work/rotated.json" "$code"); trying again in ${delay}s"
    sleep "$delay"
done
case $code in
    201) ;;
    000) fail "the rotation got no answer ($(problem "$work/rotated.json" "$code")). It may" \
        "have been carried out: run this again without --force, which reads the token's status" \
        "first; status rotating means a successor was issued and lost, and an organization" \
        "admin must create a new token before this one's grace ends." ;;
    409) fail "another request rotated this token at the same moment and received the" \
        "successor; nothing to store from this run: $(problem "$work/rotated.json" "$code")" ;;
    401) why=$(problem "$work/rotated.json" "$code")
        case $why in TOKEN_REVOKED:*) fail "the token had been rotated already, so its whole" \
            "rotation family, the successor included, is now revoked; an organization admin" \
            "must create a new token (the server said $why)" ;; esac
        fail "rotation refused: $why" ;;
    403) fail "rotation refused: $(problem "$work/rotated.json" "$code") (the token needs the" \
        "scope token:self_rotate, and its creator must still hold token:manage)" ;;
    *) fail "rotation refused: $(problem "$work/rotated.json" "$code")" ;;
esac
new=$(jq -r '.token // empty' "$work/rotated.json")
new_id=$(jq -r '.id' "$work/rotated.json")
new_prefix=$(jq -r '.prefix' "$work/rotated.json")
new_expires=$(jq -r '.expires_at' "$work/rotated.json")
well_formed "$new" || fail "the rotation's answer holds no well-formed token"

# 3. The successor must work before anyone stores it.
code=$(self_get "$new" "$work/successor.json")
if [ "$code" != 200 ] || [ "$(jq -r '.id' "$work/successor.json")" != "$new_id" ] \
    || [ "$(jq -r '.status' "$work/successor.json")" != active ]; then
    fail "the successor ($new_prefix...) was issued but does not answer as itself" \
        "($(problem "$work/successor.json" "$code")); it is not printed. The current token" \
        "keeps working for ${grace}s; ask an organization admin to look at the token."
fi

log "rotated $name: $prefix... -> $new_prefix..., which expires at $new_expires; the old" \
    "token keeps working for ${grace}s: store the new one before then"
printf '%s\n' "$new"
