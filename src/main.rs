//! The sip-operator binary. The controller arrives with the controller issue; for now the
//! binary only identifies itself.
fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("--version") | Some("-V") => println!("sip-operator {}", env!("CARGO_PKG_VERSION")),
        _ => {
            eprintln!(
                "sip-operator {}: the controller is not implemented yet",
                env!("CARGO_PKG_VERSION")
            );
            std::process::exit(2);
        }
    }
}
