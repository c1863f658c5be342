//! Prints the CustomResourceDefinitions as YAML: `crdgen` writes all three to stdout,
//! `crdgen --out-dir crds` writes one file per CRD (what is committed under `crds/`).
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
        _ => return Err("usage: crdgen [--out-dir DIR]".into()),
    }
    Ok(())
}
