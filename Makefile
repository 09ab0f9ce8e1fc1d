# The README's two commands. Each installs what is missing first (scripts/ensure-deps).
.PHONY: demo test deps

deps:
	@scripts/ensure-deps

## The main job: the emulated token end to end with the tools people already use.
demo: deps
	@cargo build --quiet --release -p kilt-emulator -p kilt-pkcs11
	@scripts/demo target/release

## Every test: formatting and lints, the conformance suite on kilt and SoftHSM2 (JUnit reports in
## target/conformance/), the benches in quick mode (reported, never failing on timings), then unit
## and integration tests (the built .so through cryptoki, peers: pkcs11-tool, p11tool, OpenSSL).
test: deps
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	cargo build --workspace --quiet
	scripts/conformance-ci
	scripts/bench-ci
	scripts/run-tests
