# Sourced by the bench scripts: one release gateway on ephemeral loopback ports, with one
# generic-profile hospital that signs in with a fresh token.
#   start_gateway DIR   writes DIR/tenants.toml and DIR/gateway.toml, starts the gateway
#                       and sets GW (the binary), GWPID, TENANT, TOKEN, HTTPS and ADMIN
#                       (host:port) and R (its age recipient).
# The caller builds the binary first and kills $GWPID on exit.
start_gateway() {
  local w=$1 hash
  GW=$PWD/target/release/gateway
  TENANT=3501200000
  TOKEN=bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  hash=$(printf '%s' "$TOKEN" | openssl dgst -sha256 -r | cut -d' ' -f1)
  printf '[[tenant]]\ncode = "%s"\nname = "Bench hospital"\nprofile = "generic"\ntoken_hashes = ["sha256:%s"]\nallow_ips = ["127.0.0.0/8"]\n' \
    "$TENANT" "$hash" > "$w/tenants.toml"
  printf '[server]\ndata_dir = "%s/data"\ntenants_file = "%s/tenants.toml"\n[sftp]\nlisten = "127.0.0.1:0"\n[https]\nlisten = "127.0.0.1:0"\n[admin]\nlisten = "127.0.0.1:0"\n[log]\nlevel = "warn"\n' \
    "$w" "$w" > "$w/gateway.toml"
  "$GW" serve --config "$w/gateway.toml" > "$w/gateway.log" 2>&1 & GWPID=$!
  for _ in $(seq 100); do [ -f "$w/data/run/listeners.json" ] && break; sleep 0.1; done
  HTTPS=$(python3 -c "import json;print(json.load(open('$w/data/run/listeners.json'))['https'])")
  ADMIN=$(python3 -c "import json;print(json.load(open('$w/data/run/listeners.json'))['admin'])")
  R=$("$GW" keys show --config "$w/gateway.toml" 2>/dev/null | grep -o 'age1[0-9a-z]*' | head -1)
}
