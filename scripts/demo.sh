#!/usr/bin/env bash
# The strataflow demo: the sample platform on the local sandbox, from validation to a prod promotion.
# Run it with `make demo` (which installs strataflow into .venv first).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. Validate the configuration (no Prefect, no cloud: well under a second)"
strata validate

step "2. Start (or reuse) the local Prefect server"
strata server start

step "3. The component graph of dev"
strata graph dev

step "4. Plan dev on the sandbox cloud (a moto server on 127.0.0.1)"
strata plan dev --sandbox

step "5. Apply dev"
strata apply dev --sandbox

step "6. What is deployed in dev"
strata status dev

step "7. Promote dev to staging (staging needs no approval)"
strata promote dev staging --sandbox

step "8. Promote staging to prod: prod needs an approver (alice or bob)"
log="$(mktemp)"
strata promote staging prod --sandbox 2> >(tee "$log" >&2) &
promotion=$!
flow_run_id=""
for _ in $(seq 1 240); do
  flow_run_id="$(grep -o 'strata approve [0-9a-f-]*' "$log" | head -n 1 | awk '{print $3}')" || true
  [ -n "$flow_run_id" ] && break
  if ! kill -0 "$promotion" 2>/dev/null; then break; fi
  sleep 0.5
done
if [ -z "$flow_run_id" ]; then
  wait "$promotion"
  echo "the promotion did not pause for approval" >&2
  exit 1
fi
step "9. alice approves it (from another terminal this is the same command)"
strata approve "$flow_run_id" --as alice --comment "approved in the demo"
wait "$promotion"
rm -f "$log"

step "10. prod's history: who promoted, who approved"
strata history prod --limit 5

ui="$(strata server status --json | python3 -c 'import json,sys; s=json.load(sys.stdin)["server"]; print(s["url"] if s else "")')"
cat <<MSG

Done. The Prefect UI is at ${ui:-the address above}: flow runs, task runs per component,
the run reports and each component's state artifact (strata-<env>-<cloud>-<component>).

Try next:
  strata apply dev --sandbox                  # every component is unchanged
  edit config/environments/dev.yaml (node_count: 3), then
  strata plan dev --sandbox                   # only clusters (and what uses it) changes
  strata apply dev --sandbox --cloud azure    # the same graph on the Azure sandbox
  strata destroy dev --sandbox --select dns+   # destroy walks the graph in reverse
  strata server stop                          # stop the local server and sandboxes
MSG
