//! Benchmark of the embedded API server (written later in the session).
fn main() {}
