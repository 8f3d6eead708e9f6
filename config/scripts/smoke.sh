#!/bin/sh
# Smoke test of the sample platform: checks that the platform's Endpoint looks like a URL.
#
#   smoke.sh ENDPOINT [PATH]
#
# ENDPOINT is the platform component's Endpoint output (http:// or https:// and a host);
# PATH (default /healthz) is appended to it for the checked URL. With STRATA_SMOKE_FETCH=1
# the URL is also fetched with curl (when installed) and must answer 2xx or 3xx.
# The last line on stdout is a JSON object of outputs (the command backend's `outputs: json`):
#   {"checked": "<url>", "endpoint": "<endpoint>", "fetched": false}
# Exit status: 0 when the checks pass, 1 when one fails, 2 on wrong usage.
set -eu

if [ "$#" -lt 1 ] || [ "$#" -gt 2 ]; then
    echo "usage: $0 ENDPOINT [PATH]" >&2
    exit 2
fi

endpoint=$1
path=${2:-/healthz}

fail() {
    echo "smoke test failed: $*" >&2
    exit 1
}

[ -n "$endpoint" ] || fail "the platform's Endpoint is empty"

case $endpoint in
    *'"'* | *'\'* | *' '*) fail "'$endpoint' contains a quote, backslash or space" ;;
    http://?* | https://?*) ;;
    *) fail "'$endpoint' is not an http:// or https:// URL" ;;
esac

rest=${endpoint#*://}
host=${rest%%/*}
host=${host%%:*}
[ -n "$host" ] || fail "'$endpoint' has no host"
case $host in
    *[!A-Za-z0-9.-]*) fail "'$host' is not a valid host name" ;;
esac

case $path in
    /*) ;;
    *) path=/$path ;;
esac
case $path in
    *'"'* | *'\'* | *' '*) fail "path '$path' contains a quote, backslash or space" ;;
esac
url=${endpoint%/}$path

fetched=false
if [ "${STRATA_SMOKE_FETCH:-0}" = 1 ] && command -v curl >/dev/null 2>&1; then
    code=$(curl --silent --output /dev/null --max-time 10 --write-out '%{http_code}' "$url") || code=000
    case $code in
        2?? | 3??) fetched=true ;;
        *) fail "$url answered HTTP $code" ;;
    esac
fi

echo "smoke test passed: $url"
printf '{"checked": "%s", "endpoint": "%s", "fetched": %s}\n' "$url" "$endpoint" "$fetched"
