# The README's two commands. Each installs what is missing first (scripts/ensure-deps).
.PHONY: demo demo-tools test deps

deps:
	@scripts/ensure-deps

## The main job: `kilt demo` — a fresh emulated JaCarta, the mock CA and the mock bank in one
## process; Flow 2 (CA reissue) then Flow 1 (bank regeneration) end to end; nothing left behind.
demo: deps
	@cargo build --quiet --release -p kilt-client -p kilt-pkcs11 -p kilt-token
	@target/release/kilt demo

## The token alone with the tools people already use (pkcs11-tool, openssl).
demo-tools: deps
	@cargo build --quiet --release -p kilt-token -p kilt-pkcs11
	@scripts/demo target/release

## Every test: formatting and lints, the conformance suite on kilt and SoftHSM2 (JUnit reports in
## target/conformance/), the benches in quick mode (reported, never failing on timings), then unit
## and integration tests (the built .so through cryptoki, peers: pkcs11-tool, p11tool, OpenSSL).
test: deps
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	cargo build --workspace --quiet
	cargo check -p kilt-client --no-default-features --quiet
	scripts/conformance-ci
	scripts/bench-ci
	scripts/run-tests
