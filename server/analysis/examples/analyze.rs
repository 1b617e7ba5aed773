//! Print the analysis report of each `.wasm` file given on the command line as JSON.
fn main() {
    let policy = analysis::Policy::default();
    for path in std::env::args().skip(1) {
        let result = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| analysis::analyze(&bytes, &policy).map_err(|e| e.to_string()));
        match result {
            Ok(report) => {
                let mut report = report;
                report.imports.truncate(5);
                report.exports.truncate(5);
                println!(
                    "{path}: {}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            }
            Err(e) => println!("{path}: {e}"),
        }
    }
}
