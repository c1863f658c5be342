//! Prints the CustomResourceDefinitions as YAML: `crdgen` writes all three to stdout,
//! `crdgen --out-dir crds` writes one file per CRD (what is committed under `crds/` and
//! `charts/sip-operator/crds/`), `crdgen --reference docs/reference.md` the Markdown API
//! reference.
use std::path::PathBuf;

use sip_operator::crds;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (None, _) => print!("{}", crds::all_yaml()?),
        (Some("--out-dir"), Some(dir)) => {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir)?;
            for (file, yaml) in crds::files()? {
                std::fs::write(dir.join(file), yaml)?;
            }
        }
        (Some("--reference"), Some(file)) => std::fs::write(file, sip_operator::crd_reference::markdown())?,
        _ => return Err("usage: crdgen [--out-dir DIR | --reference FILE]".into()),
    }
    Ok(())
}
