//! `crds/` must be exactly what `crdgen` produces from the Rust types: a stale CRD would let
//! the API server accept or refuse different input than the operator expects.
use std::collections::BTreeMap;

#[test]
fn committed_crds_match_crdgen_output() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let generated: BTreeMap<String, String> = sip_operator::crds::files()
        .expect("render CRDs")
        .into_iter()
        .collect();
    let committed: BTreeMap<String, String> = std::fs::read_dir(&dir)
        .expect("read crds/")
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
        "crds/ holds other files than crdgen writes; run `cargo run --bin crdgen -- --out-dir crds`"
    );
    for (name, yaml) in &generated {
        assert!(
            committed[name] == *yaml,
            "crds/{name} is stale; run `cargo run --bin crdgen -- --out-dir crds` and commit the result"
        );
    }
}
