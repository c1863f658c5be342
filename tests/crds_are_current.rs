//! `crds/` and the chart's `charts/sip-operator/crds/` must be exactly what `crdgen` produces
//! from the Rust types: a stale CRD would let the API server accept or refuse different input
//! than the operator expects.
use std::collections::BTreeMap;

#[test]
fn committed_crds_match_crdgen_output() {
    same_as_crdgen("crds");
}

#[test]
fn the_charts_crds_are_the_same_bytes() {
    same_as_crdgen("charts/sip-operator/crds");
}

#[test]
fn the_api_reference_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reference.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == sip_operator::crd_reference::markdown(),
        "docs/reference.md is stale; run `cargo run --bin crdgen -- --reference docs/reference.md`"
    );
}

fn same_as_crdgen(rel: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let generated: BTreeMap<String, String> = sip_operator::crds::files()
        .expect("render CRDs")
        .into_iter()
        .collect();
    let committed: BTreeMap<String, String> = std::fs::read_dir(&dir)
        .expect("read the CRD directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let name = p.file_name().expect("file name").to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("read CRD file"))
        })
        .collect();
    assert_eq!(
        generated.keys().collect::<Vec<_>>(),
        committed.keys().collect::<Vec<_>>(),
        "{rel}/ holds other files than crdgen writes; run `cargo run --bin crdgen -- --out-dir {rel}`"
    );
    for (name, yaml) in &generated {
        assert!(
            committed[name] == *yaml,
            "{rel}/{name} is stale; run `cargo run --bin crdgen -- --out-dir {rel}` and commit the result"
        );
    }
}
