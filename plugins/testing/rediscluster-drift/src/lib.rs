//! The rediscluster example with Redis on port 6380 instead of 6379 (see build.rs): a
//! deliberately changed build, for replay tests.

include!(concat!(env!("OUT_DIR"), "/rediscluster.rs"));

#[cfg(test)]
mod tests {
    //! `tests/recordings/rediscluster-created.jsonl` is what `kubewasm dev --record` wrote for
    //! the rediscluster example (the unchanged build) reconciling a RedisCluster it had just
    //! created: replayed on this build with the SDK's fake host, the writes that carry the port
    //! differ, with a diff.

    use super::RedisOperator;

    #[test]
    fn a_recording_of_the_example_diverges_on_the_port() {
        let replay = kubewasm_sdk::testing::replay::<RedisOperator>(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/recordings/rediscluster-created.jsonl"
        ));
        assert!(!replay.is_same());
        let first = &replay.reconciles[0];
        assert_eq!(first.key, "default/cache");
        let text = first.divergences.join("\n");
        for expected in [
            "Create StatefulSet default/cache: the body differs",
            "- .spec.template.spec.containers[0].ports[0].containerPort: 6379",
            "+ .spec.template.spec.containers[0].ports[0].containerPort: 6380",
            "Create Service default/cache: the body differs",
        ] {
            assert!(text.contains(expected), "no {expected:?} in\n{replay}");
        }
    }
}
