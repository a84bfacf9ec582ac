//! The `trespass` test plugin's answers: for an order ConfigMap it writes `<order>-result`, one
//! data key per attempt (`N: "<attempt> => <answer>"`).

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

/// The answers to order `name`, once its result appears in namespace `reply_to`: each attempt
/// and what the host answered, in order.
pub async fn answers(client: &kube::Client, reply_to: &str, name: &str) -> Vec<(String, String)> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), reply_to);
    let result = format!("{name}-result");
    let cm = super::eventually(&format!("the result of order {name}"), || async {
        api.get_opt(&result).await.ok().flatten()
    })
    .await;
    let mut lines: Vec<(usize, String)> = cm
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.parse().expect("numbered answers"), v))
        .collect();
    lines.sort();
    lines
        .into_iter()
        .map(|(_, v)| {
            let (attempt, answer) = v.split_once(" => ").expect("`attempt => answer`");
            (attempt.to_owned(), answer.to_owned())
        })
        .collect()
}

/// The answer to `attempt`.
pub fn answer<'a>(answers: &'a [(String, String)], attempt: &str) -> &'a str {
    answers
        .iter()
        .find(|(a, _)| a == attempt)
        .map(|(_, r)| r.as_str())
        .unwrap_or_else(|| panic!("no answer to {attempt:?} in {answers:#?}"))
}

/// Asserts the answer is `forbidden` and mentions every needle.
pub fn assert_forbidden(answers: &[(String, String)], attempt: &str, needles: &[&str]) {
    let a = answer(answers, attempt);
    assert!(a.starts_with("forbidden: "), "{attempt}: {a}");
    for n in needles {
        assert!(a.contains(n), "{attempt}: {a:?} does not mention {n:?}");
    }
}
