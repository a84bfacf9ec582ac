//! Parsing of the `#[kubewasm(...)]` attributes on a spec struct.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use serde_json::Value;
use syn::{DeriveInput, LitStr, Path};

/// The printer column types Kubernetes accepts.
const COLUMN_TYPES: &[&str] = &["integer", "number", "string", "boolean", "date"];

/// Everything `#[kubewasm(...)]` says.
pub struct Attrs {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub kind_span: Span,
    pub namespaced: bool,
    pub status: Option<Path>,
    pub plural: Option<String>,
    pub singular: Option<String>,
    pub shortnames: Vec<String>,
    pub categories: Vec<String>,
    pub printcolumns: Vec<Value>,
    pub derives: Vec<Path>,
    pub krate: TokenStream,
}

impl Attrs {
    pub fn parse(input: &DeriveInput) -> syn::Result<Self> {
        let mut group = None;
        let mut version = None;
        let mut kind: Option<LitStr> = None;
        let mut attrs = Attrs {
            group: String::new(),
            version: String::new(),
            kind: String::new(),
            kind_span: Span::call_site(),
            namespaced: false,
            status: None,
            plural: None,
            singular: None,
            shortnames: Vec::new(),
            categories: Vec::new(),
            printcolumns: Vec::new(),
            derives: Vec::new(),
            krate: quote!(::kubewasm_sdk),
        };
        let mut seen_any = false;
        for attr in input.attrs.iter().filter(|a| a.path().is_ident("kubewasm")) {
            seen_any = true;
            attr.parse_nested_meta(|meta| {
                let key = meta
                    .path
                    .get_ident()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                match key.as_str() {
                    "namespaced" => {
                        attrs.namespaced = true;
                        return Ok(());
                    }
                    "group" | "version" | "kind" | "status" | "plural" | "singular"
                    | "shortname" | "category" | "printcolumn" | "derive" | "crate" => {}
                    _ => {
                        return Err(meta.error(format!(
                            "unknown #[kubewasm] key `{key}`; expected one of group, version, \
                             kind, namespaced, status, plural, singular, shortname, category, \
                             printcolumn, derive, crate"
                        )));
                    }
                }
                let lit: LitStr = meta.value()?.parse()?;
                match key.as_str() {
                    "group" => group = Some(dns_name(&lit, true)?),
                    "version" => version = Some(version_name(&lit)?),
                    "kind" => kind = Some(lit),
                    "status" => attrs.status = Some(lit.parse()?),
                    "plural" => attrs.plural = Some(lower_name(&lit)?),
                    "singular" => attrs.singular = Some(lower_name(&lit)?),
                    "shortname" => attrs.shortnames.push(lower_name(&lit)?),
                    "category" => attrs.categories.push(lower_name(&lit)?),
                    "printcolumn" => attrs.printcolumns.push(printcolumn(&lit)?),
                    "derive" => attrs.derives.push(lit.parse()?),
                    "crate" => {
                        let path: Path = lit.parse()?;
                        attrs.krate = quote!(#path);
                    }
                    _ => unreachable!("keys are matched above"),
                }
                Ok(())
            })?;
        }
        let missing = |what: &str| {
            syn::Error::new_spanned(
                &input.ident,
                if seen_any {
                    format!("#[kubewasm(...)] needs `{what} = \"..\"`")
                } else {
                    "#[derive(CustomResource)] needs #[kubewasm(group = \"..\", version = \"..\", \
                     kind = \"..\")]"
                        .to_owned()
                },
            )
        };
        attrs.group = group.ok_or_else(|| missing("group"))?;
        attrs.version = version.ok_or_else(|| missing("version"))?;
        let kind = kind.ok_or_else(|| missing("kind"))?;
        let text = kind.value();
        if !text.starts_with(|c: char| c.is_ascii_uppercase())
            || !text.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(syn::Error::new_spanned(
                &kind,
                "the kind must be CamelCase ASCII letters and digits, e.g. `ScaleSchedule`",
            ));
        }
        attrs.kind = text;
        attrs.kind_span = kind.span();
        Ok(attrs)
    }
}

/// A DNS subdomain (an API group): lowercase letters, digits, `-` and `.`.
fn dns_name(lit: &LitStr, needs_dot: bool) -> syn::Result<String> {
    let text = lit.value();
    let ok = !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && (!needs_dot || text.contains('.'));
    if ok {
        Ok(text)
    } else {
        Err(syn::Error::new_spanned(
            lit,
            "the group must be a DNS subdomain with a dot, e.g. `demo.example.com` \
             (custom resources cannot be in the core group)",
        ))
    }
}

/// `v1`, `v1alpha1`, `v2beta3`.
fn version_name(lit: &LitStr) -> syn::Result<String> {
    let text = lit.value();
    let ok = text.starts_with('v')
        && text.len() > 1
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && text[1..].starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(text)
    } else {
        Err(syn::Error::new_spanned(
            lit,
            "the version must look like `v1`, `v1alpha1` or `v2beta1`",
        ))
    }
}

/// A plural, singular, short name or category: lowercase letters, digits and `-`.
fn lower_name(lit: &LitStr) -> syn::Result<String> {
    let text = lit.value();
    let ok = text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(text)
    } else {
        Err(syn::Error::new_spanned(
            lit,
            "names must be lowercase letters, digits and `-`, starting with a letter",
        ))
    }
}

/// A printer column as JSON: `{"name": .., "type": .., "jsonPath": ..}` and optionally
/// `description`, `format` and `priority`.
fn printcolumn(lit: &LitStr) -> syn::Result<Value> {
    let err = |why: String| {
        syn::Error::new_spanned(
            lit,
            format!(
                "printcolumn: {why} (example: \
                 r#\"{{\"name\":\"Replicas\",\"type\":\"integer\",\"jsonPath\":\".spec.replicas\"}}\"#)"
            ),
        )
    };
    let value: Value =
        serde_json::from_str(&lit.value()).map_err(|e| err(format!("not JSON: {e}")))?;
    let Value::Object(map) = &value else {
        return Err(err("not a JSON object".into()));
    };
    for key in ["name", "type", "jsonPath"] {
        if !map.get(key).is_some_and(Value::is_string) {
            return Err(err(format!("needs a string `{key}`")));
        }
    }
    let ty = map["type"].as_str().unwrap_or_default();
    if !COLUMN_TYPES.contains(&ty) {
        return Err(err(format!(
            "type {ty:?} is not one of {}",
            COLUMN_TYPES.join(", ")
        )));
    }
    if !map["jsonPath"]
        .as_str()
        .unwrap_or_default()
        .starts_with('.')
    {
        return Err(err(
            "jsonPath must start with `.`, e.g. `.spec.replicas`".into()
        ));
    }
    for key in map.keys() {
        if ![
            "name",
            "type",
            "jsonPath",
            "description",
            "format",
            "priority",
        ]
        .contains(&key.as_str())
        {
            return Err(err(format!("unknown key `{key}`")));
        }
    }
    Ok(value)
}
