//! Benchmark of the store and the work queue (filled in below).
fn main() {}
