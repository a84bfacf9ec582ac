//! The rediscluster example with Redis on port 6380 instead of 6379 (see build.rs): a
//! deliberately changed build, for replay tests.

include!(concat!(env!("OUT_DIR"), "/rediscluster.rs"));
