//! A Markdown reference of the API, generated from the CRDs' OpenAPI schemas: every field of
//! every kind with its type, constraints, default and description (the text `kubectl explain`
//! shows), and the CEL rules the API server enforces. `crdgen --reference docs/reference.md`
//! writes it; a test fails when the committed file is stale.
use serde_json::Value;

/// The whole reference document.
pub fn markdown() -> String {
    let mut out = String::from(
        "# API reference: sipoperator.io/v1alpha1\n\n\
         Generated from the CustomResourceDefinitions by `cargo run --bin crdgen -- --reference \
         docs/reference.md`; do not edit. `kubectl explain <kind>.<field>` shows the same text.\n",
    );
    for crd in crate::crds::all() {
        let kind = crd.spec.names.kind.clone();
        let Some(version) = crd.spec.versions.first() else {
            continue;
        };
        let schema = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or(Value::Null);
        out.push_str(&format!(
            "\n## {kind}\n\n`kubectl get {}` (short names: {}).\n",
            crd.spec.names.plural,
            crd.spec.names.short_names.clone().unwrap_or_default().join(", ")
        ));
        let root: String = schema
            .get("x-kubernetes-validations")
            .map(|v| rules(&kind, &serde_json::json!({ "x-kubernetes-validations": v })))
            .unwrap_or_default();
        if !root.is_empty() {
            out.push_str(&format!(
                "\nRules the API server enforces on the whole object:\n\n{root}"
            ));
        }
        for part in ["spec", "status"] {
            let Some(node) = schema.pointer(&format!("/properties/{part}")) else {
                continue;
            };
            out.push_str(&format!(
                "\n### {kind}.{part}\n\n| field | type | constraints | description |\n|---|---|---|---|\n"
            ));
            let mut rows = Vec::new();
            fields(part, node, &mut rows);
            out.push_str(&rows.concat());
            let rules = rules(part, node);
            if !rules.is_empty() {
                out.push_str(&format!(
                    "\nRules the API server enforces on `{part}`:\n\n{rules}"
                ));
            }
        }
    }
    out.push_str(&format!(
        "\n## Example: a user with two devices and an alias line\n\n`examples/24-sipuser-dana-devices.yaml`:\n\n```yaml\n{}```\n",
        include_str!("../examples/24-sipuser-dana-devices.yaml")
    ));
    out
}

/// One table row per field below `node` (depth first, in schema order).
fn fields(path: &str, node: &Value, rows: &mut Vec<String>) {
    let Some(properties) = node.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = node
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, child) in properties {
        let child_path = format!("{path}.{name}");
        let mut constraints = constraints(child);
        if required.contains(&name.as_str()) {
            constraints.insert(0, "required".into());
        }
        rows.push(format!(
            "| `{child_path}` | {} | {} | {} |\n",
            type_of(child),
            cell(&constraints.join(", ")),
            cell(
                child
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            )
        ));
        fields(&child_path, child, rows);
        if let Some(items) = child.get("items") {
            fields(&format!("{child_path}[]"), items, rows);
        }
    }
}

fn type_of(node: &Value) -> String {
    match node.get("type").and_then(Value::as_str) {
        Some("array") => {
            let item = node.get("items").map(type_of).unwrap_or_else(|| "any".into());
            format!("[]{item}")
        }
        Some("object") if node.get("additionalProperties").is_some() => "map".into(),
        Some(t) => t.into(),
        None if node.get("x-kubernetes-int-or-string").is_some() => "int or string".into(),
        None => "any".into(),
    }
}

fn constraints(node: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let get = |k: &str| node.get(k);
    if let Some(d) = get("default") {
        out.push(format!("default `{d}`"));
    }
    if let Some(values) = get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values
            .iter()
            .map(|v| format!("`{}`", v.as_str().unwrap_or_default()))
            .collect();
        out.push(format!("one of {}", values.join(", ")));
    }
    for (key, label) in [
        ("minimum", "min"),
        ("maximum", "max"),
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
    ] {
        if let Some(v) = get(key).and_then(Value::as_f64) {
            // Schemas carry bounds as floats; every bound here is a whole number.
            out.push(format!("{label} {}", v as i64));
        }
    }
    if let Some(p) = get("pattern").and_then(Value::as_str) {
        out.push(format!("pattern `{p}`"));
    }
    if let Some(p) = node.pointer("/items/pattern").and_then(Value::as_str) {
        out.push(format!("items match `{p}`"));
    }
    out
}

/// The CEL rules on `node` and below, as a list with their messages.
fn rules(path: &str, node: &Value) -> String {
    let mut out = String::new();
    for rule in node
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let message = rule.get("message").and_then(Value::as_str).unwrap_or_default();
        let expression = rule.get("rule").and_then(Value::as_str).unwrap_or_default();
        out.push_str(&format!(
            "- `{path}`: {message} (`{}`)\n",
            expression.replace('`', "'")
        ));
    }
    for (name, child) in node
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        out.push_str(&rules(&format!("{path}.{name}"), child));
    }
    out
}

/// Text fit for one table cell.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_kind_and_its_documented_fields_are_in_the_reference() {
        let md = super::markdown();
        for heading in [
            "## SipDomain",
            "## SipProfile",
            "## SipUser",
            "### SipUser.status",
            "## SipUserInvite",
            "### SipUserInvite.status",
        ] {
            assert!(md.contains(heading), "{heading}");
        }
        assert!(md.contains("| `spec.domainRef` | string | required"), "{md}");
        assert!(md.contains("`spec.registrar.kamailio.service.portName`"));
        assert!(md.contains("Rules the API server enforces on `spec`"));
        assert!(md.contains("| `spec.validFor` | string |"), "{md}");
    }
}
