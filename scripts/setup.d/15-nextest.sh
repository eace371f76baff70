# cargo-nextest runs `make test` (.config/nextest.toml: each test its own process, the long
# end-to-end tests beside the rest). Installed from crates.io only when missing or older than the
# config asks for (`priority` came in 0.9.91).
nextest_version=$(cargo nextest --version 2>/dev/null | sed -n 's/^cargo-nextest \([0-9][0-9.]*\).*/\1/p' || true)
if [ -z "$nextest_version" ] || [ "$(printf '%s\n' 0.9.91 "$nextest_version" | sort -V | head -1)" != 0.9.91 ]; then
  log "cargo install --locked cargo-nextest@0.9.143 (was: ${nextest_version:-none})"
  cargo install --locked --quiet cargo-nextest@0.9.143
fi
