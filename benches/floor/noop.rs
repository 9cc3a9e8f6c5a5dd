//! The start-up floor: a Rust binary that does nothing.
fn main() {}
