//! The conformance suite `kilt-conformance` (issue 3).
//!
//! Placeholder: this crate is built by a later issue; the workspace lists it now so the
//! folder layout of DESIGN.md holds from the first commit.
//!
//! ```text
//! Nothing to call yet.
//! ```
