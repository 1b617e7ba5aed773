//! `analysis::analyze` against plain `wasmparser::Validator::validate_all` on the same module, in
//! the same run, interleaved so both see the same machine load.
//!
//! ANALYSIS_BENCH_WASM=$(server/analysis/benches/fetch-module.sh) \
//!   cargo bench -p analysis --bench analyze_vs_validate
//!
//! Optional: ANALYSIS_BENCH_ROUNDS (default 15).

use std::time::{Duration, Instant};

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let Ok(path) = std::env::var("ANALYSIS_BENCH_WASM") else {
        eprintln!(
            "set ANALYSIS_BENCH_WASM to a .wasm file, e.g. with server/analysis/benches/fetch-module.sh"
        );
        return;
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let rounds: usize = std::env::var("ANALYSIS_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let policy = analysis::Policy::default();
    let features = analysis::wasmtime_default_features();
    let validate = || {
        wasmparser::Validator::new_with_features(features)
            .validate_all(&bytes)
            .is_ok()
    };
    let analyze = || analysis::analyze(&bytes, &policy);
    let analyze_1 = || analysis::analyze_with_threads(&bytes, &policy, 1);

    // Warm-up (page cache, allocator), and a sanity check that both accept the module.
    assert!(validate(), "wasmparser refuses the module");
    let report = match analyze() {
        Ok(report) => report,
        Err(e) => panic!("analysis refuses the module: {e}"),
    };

    let (mut v, mut a, mut a1) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (dv, ok) = time(validate);
        let (da, res) = time(analyze);
        let (da1, res1) = time(analyze_1);
        assert!(ok && res.is_ok());
        assert_eq!(res.ok(), res1.ok(), "the report does not depend on threads");
        v.push(dv);
        a.push(da);
        a1.push(da1);
    }
    let (vmin, amin, a1min) = (
        v.iter().min().copied(),
        a.iter().min().copied(),
        a1.iter().min().copied(),
    );
    let (vmed, amed, a1med) = (median(&mut v), median(&mut a), median(&mut a1));
    println!(
        "module: {path} ({} bytes, {} findings)",
        bytes.len(),
        report.findings.len()
    );
    println!("rounds: {rounds}");
    println!(
        "validate_all      median {:8.1} ms  min {:8.1} ms",
        ms(vmed),
        ms(vmin.unwrap_or_default())
    );
    println!(
        "analyze           median {:8.1} ms  min {:8.1} ms",
        ms(amed),
        ms(amin.unwrap_or_default())
    );
    println!(
        "analyze, 1 thread  median {:8.1} ms  min {:8.1} ms",
        ms(a1med),
        ms(a1min.unwrap_or_default())
    );
    println!(
        "ratio (median analyze / median validate_all): {:.2}",
        amed.as_secs_f64() / vmed.as_secs_f64()
    );
    println!(
        "ratio (median analyze 1 thread / median validate_all): {:.2}",
        a1med.as_secs_f64() / vmed.as_secs_f64()
    );
}
