//! Fixtures shared by the unit tests.

use kube::api::ApiResource;

/// The core `v1` Pod resource.
pub(crate) fn pods() -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Pod".into(),
        plural: "pods".into(),
    }
}
