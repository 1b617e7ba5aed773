//! `admin security-report`: the security report over a date range as text, JSON, CSV or PDF.
//! The numbers come from the platform (`Platform::security_report`); this module only lays them out.

use std::io::Write;

use platform::{
    Platform,
    access::Principal,
    audit::{Actor, AuditEvent, EventKind, Outcome},
    security::{Ranked, Report},
};

use crate::{
    cli::{ReportFormat, SecurityReportArgs},
    commands::CommandError,
};

fn date(flag: &str, value: &str) -> Result<chrono::NaiveDate, CommandError> {
    chrono::NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|_| {
        CommandError::Usage(format!(
            "--{flag}: expected a date such as 2024-01-31, got {value:?}"
        ))
    })
}

pub async fn security_report(
    platform: &Platform,
    args: SecurityReportArgs,
) -> Result<(), CommandError> {
    let start_day = date("start-date", &args.start_date)?;
    let end_day = date("end-date", &args.end_date)?;
    if end_day < start_day {
        return Err(CommandError::Usage(
            "--end-date: must not be before --start-date".into(),
        ));
    }
    let start = start_day.and_time(chrono::NaiveTime::MIN).and_utc();
    // The end date is included: the window ends at the next midnight.
    let end = (end_day + chrono::Days::new(1))
        .and_time(chrono::NaiveTime::MIN)
        .and_utc();
    let report = platform
        .security_report(&Principal::System, start, end)
        .await
        .map_err(|e| {
            CommandError::Usage(format!(
                "cannot build the report: {}",
                platform::error_chain(&e)
            ))
        })?;
    let bytes = match args.format {
        ReportFormat::Text => (lines(&report, start_day, end_day).join("\n") + "\n").into_bytes(),
        ReportFormat::Json => {
            let mut v = serde_json::to_vec_pretty(&report)
                .map_err(|e| CommandError::Usage(e.to_string()))?;
            v.push(b'\n');
            v
        }
        ReportFormat::Csv => csv(&report).into_bytes(),
        ReportFormat::Pdf => pdf(&lines(&report, start_day, end_day)),
    };
    match &args.output {
        Some(path) => std::fs::write(path, &bytes)
            .map_err(|e| CommandError::Usage(format!("cannot write {}: {e}", path.display())))?,
        None => std::io::stdout()
            .write_all(&bytes)
            .map_err(|e| CommandError::Usage(format!("cannot write the report: {e}")))?,
    }
    let details = serde_json::json!({ "report": "security", "start_date": start_day.to_string(), "end_date": end_day.to_string(), "format": format!("{:?}", args.format).to_lowercase(), "events": report.total_events });
    platform
        .audit()
        .record(
            AuditEvent::new(EventKind::DataExport, Actor::system(), Outcome::Success)
                .with_details(details),
        )
        .await?;
    if let Some(path) = &args.output {
        eprintln!(
            "wrote the security report for {start_day} to {end_day} ({} events) to {}",
            report.total_events,
            path.display()
        );
    }
    Ok(())
}

fn ranking(out: &mut Vec<String>, title: &str, rows: &[Ranked]) {
    out.push(String::new());
    out.push(format!("# {title}"));
    if rows.is_empty() {
        out.push("  none".into());
    }
    for r in rows {
        out.push(format!("  {:<48} {:>8}", r.name, r.count));
    }
}

/// The report as lines of text (also the PDF's content); `# ` marks a heading.
fn lines(r: &Report, start: chrono::NaiveDate, end: chrono::NaiveDate) -> Vec<String> {
    let mut out = vec![
        "# wasm-as-os security report".to_string(),
        format!("Period: {start} to {end} (UTC, both days included)"),
        format!(
            "Generated: {}",
            r.generated_at.format("%Y-%m-%d %H:%M:%S UTC")
        ),
        format!("Events recorded: {}", r.total_events),
        format!(
            "Failed sign-ins: {}   Permission denials: {}   Module executions: {}   Sandbox violations: {}",
            r.count("login_failure"),
            r.count("permission_denied"),
            r.count("module_execute"),
            r.count("sandbox_violation")
        ),
        String::new(),
        "# Events by kind and outcome".to_string(),
    ];
    if r.events.is_empty() {
        out.push("  none".into());
    }
    for e in &r.events {
        out.push(format!(
            "  {:<28} {:<10} {:>8}",
            e.event, e.outcome, e.count
        ));
    }
    ranking(
        &mut out,
        "Failed sign-ins by account",
        &r.failed_logins_by_actor,
    );
    ranking(
        &mut out,
        "Failed sign-ins by address",
        &r.failed_logins_by_address,
    );
    ranking(&mut out, "Permission denials by actor", &r.denials_by_actor);
    ranking(&mut out, "Executions by module", &r.executions_by_module);
    ranking(
        &mut out,
        "Sandbox violations by kind",
        &r.sandbox_violations,
    );
    out
}

/// `section,name,outcome,count`, one row per number of the report.
fn csv(r: &Report) -> String {
    let mut out = String::from("section,name,outcome,count\r\n");
    for e in &r.events {
        out.push_str(&format!(
            "events,{},{},{}\r\n",
            platform::csv::field(&e.event),
            platform::csv::field(&e.outcome),
            e.count
        ));
    }
    for (section, rows) in [
        ("failed_logins_by_actor", &r.failed_logins_by_actor),
        ("failed_logins_by_address", &r.failed_logins_by_address),
        ("denials_by_actor", &r.denials_by_actor),
        ("executions_by_module", &r.executions_by_module),
        ("sandbox_violations", &r.sandbox_violations),
    ] {
        for row in rows {
            out.push_str(&format!(
                "{section},{},,{}\r\n",
                platform::csv::field(&row.name),
                row.count
            ));
        }
    }
    out
}

/// A PDF string literal's text: printable ASCII, with `\`, `(` and `)` escaped; anything else
/// becomes `?` (the standard Helvetica font has no encoding for it here).
fn pdf_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\\' | '(' | ')' => format!("\\{c}"),
            ' '..='~' => c.to_string(),
            _ => "?".to_string(),
        })
        .collect()
}

/// A plain A4 PDF (1.4) of text lines in Courier 9 pt (the columns line up), headings (`# `) in
/// Helvetica bold; 52 lines a page.
fn pdf(lines: &[String]) -> Vec<u8> {
    const PER_PAGE: usize = 52;
    let pages: Vec<&[String]> = if lines.is_empty() {
        vec![&[]]
    } else {
        lines.chunks(PER_PAGE).collect()
    };
    let mut objects: Vec<Vec<u8>> = Vec::new();
    // 1 catalog, 2 page tree, 3 regular font, 4 bold font, 5 info; then a page and its content each.
    let kids: Vec<String> = (0..pages.len())
        .map(|i| format!("{} 0 R", 6 + 2 * i))
        .collect();
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    objects.push(
        format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            kids.join(" "),
            pages.len()
        )
        .into_bytes(),
    );
    objects.push(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>".to_vec(),
    );
    objects.push(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    );
    objects.push(b"<< /Title (wasm-as-os security report) /Producer (wasm-as-os) >>".to_vec());
    for (i, page) in pages.iter().enumerate() {
        let mut content = String::from("BT\n14 TL\n50 800 Td\n");
        for line in page.iter() {
            match line.strip_prefix("# ") {
                Some(heading) => {
                    content.push_str(&format!("/F2 11 Tf ({}) Tj T*\n", pdf_text(heading)))
                }
                None => content.push_str(&format!("/F1 9 Tf ({}) Tj T*\n", pdf_text(line))),
            }
        }
        content.push_str("ET\n");
        objects.push(
            format!("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {} 0 R >>", 7 + 2 * i)
                .into_bytes(),
        );
        let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
        stream.extend_from_slice(content.as_bytes());
        stream.extend_from_slice(b"endstream");
        objects.push(stream);
    }
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (n, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", n + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_text_escapes_delimiters_and_drops_what_helvetica_cannot_show() {
        assert_eq!(pdf_text(r"a(b)c\d"), r"a\(b\)c\\d");
        assert_eq!(pdf_text("naïve\u{7}"), "na?ve?");
    }

    #[test]
    fn the_pdf_has_a_consistent_cross_reference_table() {
        let lines: Vec<String> = (0..120).map(|i| format!("line {i}")).collect();
        let doc = pdf(&lines);
        assert!(doc.starts_with(b"%PDF-1.4"));
        let find = |needle: &[u8]| doc.windows(needle.len()).position(|w| w == needle);
        assert!(find(b"/Count 3").is_some(), "120 lines on 3 pages");
        let tail = std::str::from_utf8(&doc[doc.len() - 40..]).unwrap();
        let start: usize = tail
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(doc[start..].starts_with(b"xref\n0 12\n"));
        // Every offset points at its object.
        let table = std::str::from_utf8(&doc[start..]).unwrap();
        for (n, entry) in table.lines().skip(3).take(11).enumerate() {
            let at: usize = entry[..10].parse().unwrap();
            assert!(
                doc[at..].starts_with(format!("{} 0 obj", n + 1).as_bytes()),
                "object {}",
                n + 1
            );
        }
    }
}
