#!/usr/bin/env bash
# The strataflow demo: the sample platform on the local sandbox, from validation to a prod rollback.
# Run it with `make demo` (which installs strataflow into .venv first). It works on a copy of
# config/ (it edits a template on the way), so the repository is left as it was.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -R config "$work/config"
cfg=(--config "$work/config")

# Give prod's approvers, alice and bob, SSH keys (in the copy): their approvals are then signed
# and verified. Real approvers use their own keys (ssh-agent and hardware keys work too).
python - "$work" <<'PY'
import pathlib, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

work = pathlib.Path(sys.argv[1])
lines = []
for name in ("alice", "bob"):
    key = ed25519.Ed25519PrivateKey.generate()
    private = work / name
    private.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
    private.chmod(0o600)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    lines.append(f'    - {{name: {name}, key: "{public.decode()} {name}@demo"}}')
prod = work / "config" / "environments" / "prod.yaml"
text = prod.read_text()
assert "  approvers: [alice, bob]\n" in text, "prod.yaml no longer lists [alice, bob]"
prod.write_text(text.replace("  approvers: [alice, bob]\n", "  approvers:\n" + "\n".join(lines) + "\n"))
PY

# Start a change into prod in the background and print its flow run id once it waits for approval.
promote_to_prod() {
  local log="$work/promotion.log"
  : > "$log"
  strata promote staging prod --sandbox "${cfg[@]}" "$@" 2> >(tee "$log" >&2) &
  promotion=$!
  flow_run_id=""
  for _ in $(seq 1 360); do
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
}

step "1. Validate the configuration (no Prefect, no cloud: well under a second)"
strata validate "${cfg[@]}"

step "2. Start (or reuse) the local Prefect server"
strata server start

step "3. The component graph of dev"
strata graph dev "${cfg[@]}"

step "4. Plan dev on the sandbox cloud (a moto server on 127.0.0.1)"
strata plan dev --sandbox "${cfg[@]}"

step "5. Apply dev: every component's files are snapshotted as a content-addressed bundle"
strata apply dev --sandbox "${cfg[@]}"

step "6. What is deployed in dev (the sandbox keeps its own records: add --sandbox)"
strata status dev --sandbox "${cfg[@]}"

step "7. Promote dev to staging: staging gets dev's bundles, byte for byte (no approval needed)"
strata promote dev staging --sandbox "${cfg[@]}"

step "8. prod is protected: apply from the working tree is refused (exit 5)"
strata apply prod --sandbox "${cfg[@]}" || echo "(exit $? as expected: prod changes through promotion or rollback)"

step "9. Promote staging to prod: it shows gates, diff and plan, then waits for alice or bob"
promote_to_prod

step "10. Meanwhile someone edits a template in the working tree: it will not reach prod"
echo "# v2: edited while prod's promotion waited" >> "$work/config/templates/aws/registry.yaml"
tail -n 1 "$work/config/templates/aws/registry.yaml"

step "11. alice approves, signing with her SSH key (from another terminal this is the same command)"
strata approve "$flow_run_id" --as alice --key "$work/alice" --comment "approved in the demo"
wait "$promotion"

step "12. prod runs exactly staging's release: the same release id, the same bundles"
strata status staging --sandbox "${cfg[@]}" | head -n 1
strata status prod --sandbox "${cfg[@]}" | head -n 1

step "13. The edit goes the normal way: apply dev, promote to staging, then to prod (approved by bob)"
strata apply dev --sandbox --select registry "${cfg[@]}"
strata promote dev staging --sandbox --select registry "${cfg[@]}"
promote_to_prod --select registry
strata approve "$flow_run_id" --as bob --key "$work/bob" --comment "the registry change"
wait "$promotion"

step "14. Roll prod back to the release it ran before (the same gates and approval as a promotion)"
log="$work/rollback.log"
strata rollback prod --sandbox "${cfg[@]}" 2> >(tee "$log" >&2) &
rollback=$!
flow_run_id=""
for _ in $(seq 1 360); do
  flow_run_id="$(grep -o 'strata approve [0-9a-f-]*' "$log" | head -n 1 | awk '{print $3}')" || true
  [ -n "$flow_run_id" ] && break
  sleep 0.5
done
strata approve "$flow_run_id" --as alice --key "$work/alice" --comment "back to the first release"
wait "$rollback"

step "15. prod's releases and history: what ran, who promoted, who approved (verified by signature)"
strata releases prod --sandbox "${cfg[@]}" --limit 3
strata history prod --sandbox "${cfg[@]}" --limit 8

ui="$(strata server status --json | python3 -c 'import json,sys; s=json.load(sys.stdin)["server"]; print(s["url"] if s else "")')"
cat <<MSG

Done. The Prefect UI is at ${ui:-the address above}: flow runs, task runs per component,
the promotion reports, and each component's state artifact (sandbox-strata-<env>-<cloud>-<component>).

Try next (with --config config, the sample platform as committed):
  strata apply dev --sandbox                  # every component is unchanged
  edit config/environments/dev.yaml (node_count: 3), then
  strata plan dev --sandbox                   # only clusters (and what uses it) changes
  strata apply dev --sandbox --cloud azure    # the same graph on the Azure sandbox
  strata cost dev --sandbox                   # what dev costs a month, per component
  strata metrics --env prod                   # Prometheus metrics from the records
  strata server stop                          # stop the local server and sandboxes
MSG
