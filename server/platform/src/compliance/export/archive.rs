//! Writing an export: one JSON document, or a zip of CSV files (one per section), as privacy.yml's
//! `data_export.formats` lists them. Sections arrive one row at a time, so an export of any size
//! is written without holding it in memory.

use std::io::{Seek, Write};

use serde_json::Value;

use crate::config::privacy::ExportFormat;

/// One part of an export: a name (the JSON key, the CSV file's name) and its columns.
#[derive(Debug, Clone, Copy)]
pub(super) struct Section {
    pub name: &'static str,
    pub columns: &'static [&'static str],
}

/// An export being written to `W`.
pub(super) enum Archive<W: Write + Seek> {
    Json {
        out: std::io::BufWriter<W>,
        rows: usize,
    },
    Csv {
        zip: Box<zip::ZipWriter<W>>,
    },
}

fn zip_error(e: zip::result::ZipError) -> std::io::Error {
    match e {
        zip::result::ZipError::Io(e) => e,
        other => std::io::Error::other(other),
    }
}

/// A cell as CSV text: strings as they are, null empty, anything else as JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => crate::csv::field(s),
        other => crate::csv::field(&other.to_string()),
    }
}

fn object(columns: &[&str], values: &[Value]) -> Value {
    Value::Object(
        columns
            .iter()
            .zip(values)
            .map(|(c, v)| ((*c).to_string(), v.clone()))
            .collect(),
    )
}

impl<W: Write + Seek> Archive<W> {
    /// Starts an export with its description (`export` in JSON, `export.csv` in the zip).
    pub fn start(
        format: ExportFormat,
        out: W,
        about: Section,
        values: &[Value],
    ) -> std::io::Result<Self> {
        let mut archive = match format {
            ExportFormat::Json => {
                let mut out = std::io::BufWriter::new(out);
                out.write_all(b"{")?;
                Self::Json { out, rows: 0 }
            }
            ExportFormat::Csv => Self::Csv {
                zip: Box::new(zip::ZipWriter::new(out)),
            },
        };
        archive.single(about, values, true)?;
        Ok(archive)
    }

    /// Whether module binaries go inside their rows (JSON, as base64) rather than as files of
    /// their own (the zip's `modules/`).
    pub fn inline_binaries(&self) -> bool {
        matches!(self, Self::Json { .. })
    }

    fn single(&mut self, section: Section, values: &[Value], first: bool) -> std::io::Result<()> {
        match self {
            Self::Json { out, .. } => {
                if !first {
                    out.write_all(b",")?;
                }
                write!(out, "\n\"{}\":", section.name)?;
                serde_json::to_writer_pretty(&mut *out, &object(section.columns, values))?;
                Ok(())
            }
            Self::Csv { .. } => {
                self.begin(section)?;
                self.row(values)
            }
        }
    }

    /// A section that is one record (the account).
    pub fn record(&mut self, section: Section, values: &[Value]) -> std::io::Result<()> {
        self.single(section, values, false)
    }

    /// Starts a section of rows.
    pub fn begin(&mut self, section: Section) -> std::io::Result<()> {
        match self {
            Self::Json { out, rows } => {
                *rows = 0;
                write!(out, ",\n\"{}\":[", section.name)?;
                Ok(())
            }
            Self::Csv { zip } => {
                let options = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .unix_permissions(0o600);
                zip.start_file(format!("{}.csv", section.name), options)
                    .map_err(zip_error)?;
                let header: Vec<String> = section
                    .columns
                    .iter()
                    .map(|c| crate::csv::field(c))
                    .collect();
                zip.write_all(header.join(",").as_bytes())?;
                zip.write_all(b"\r\n")
            }
        }
    }

    /// One row of the current section, its values in the section's column order.
    pub fn row_of(&mut self, section: Section, values: &[Value]) -> std::io::Result<()> {
        match self {
            Self::Json { out, rows } => {
                out.write_all(if *rows == 0 { b"\n" } else { b",\n" })?;
                *rows += 1;
                serde_json::to_writer(&mut *out, &object(section.columns, values))?;
                Ok(())
            }
            Self::Csv { .. } => self.row(values),
        }
    }

    fn row(&mut self, values: &[Value]) -> std::io::Result<()> {
        if let Self::Csv { zip } = self {
            let line: Vec<String> = values.iter().map(cell).collect();
            zip.write_all(line.join(",").as_bytes())?;
            zip.write_all(b"\r\n")?;
        }
        Ok(())
    }

    /// Ends a section of rows.
    pub fn end(&mut self) -> std::io::Result<()> {
        if let Self::Json { out, rows } = self {
            out.write_all(if *rows == 0 { b"]" } else { b"\n]" })?;
        }
        Ok(())
    }

    /// A file of its own in the zip (a module binary); JSON exports inline them instead.
    pub fn file(&mut self, path: &str, bytes: &[u8]) -> std::io::Result<()> {
        if let Self::Csv { zip } = self {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .unix_permissions(0o600);
            zip.start_file(path, options).map_err(zip_error)?;
            zip.write_all(bytes)?;
        }
        Ok(())
    }

    /// Completes the document or the zip and returns the output.
    pub fn finish(self) -> std::io::Result<W> {
        match self {
            Self::Json { mut out, .. } => {
                out.write_all(b"\n}\n")?;
                out.into_inner().map_err(|e| e.into_error())
            }
            Self::Csv { zip } => (*zip).finish().map_err(zip_error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ABOUT: Section = Section {
        name: "export",
        columns: &["version", "user"],
    };
    const ACCOUNT: Section = Section {
        name: "account",
        columns: &["username", "roles"],
    };
    const RUNS: Section = Section {
        name: "runs",
        columns: &["id", "note"],
    };

    fn write(format: ExportFormat, runs: &[[Value; 2]]) -> Vec<u8> {
        let mut a = Archive::start(
            format,
            std::io::Cursor::new(Vec::new()),
            ABOUT,
            &[json!(1), json!("u1")],
        )
        .unwrap();
        a.record(ACCOUNT, &[json!("alice"), json!(["developer", "viewer"])])
            .unwrap();
        a.begin(RUNS).unwrap();
        for r in runs {
            a.row_of(RUNS, r).unwrap();
        }
        a.end().unwrap();
        a.file("modules/m1.wasm", b"\0asm").unwrap();
        a.finish().unwrap().into_inner()
    }

    #[test]
    fn json_is_one_document_with_a_key_per_section() {
        let bytes = write(
            ExportFormat::Json,
            &[[json!("r1"), json!("a,b")], [json!("r2"), Value::Null]],
        );
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            doc,
            json!({
                "export": {"version": 1, "user": "u1"},
                "account": {"username": "alice", "roles": ["developer", "viewer"]},
                "runs": [{"id": "r1", "note": "a,b"}, {"id": "r2", "note": null}],
            })
        );
        let empty: Value = serde_json::from_slice(&write(ExportFormat::Json, &[])).unwrap();
        assert_eq!(empty["runs"], json!([]));
    }

    #[test]
    fn csv_is_a_zip_of_one_file_per_section_plus_binaries() {
        let bytes = write(
            ExportFormat::Csv,
            &[[json!("r1"), json!("=cmd,x")], [json!("r2"), Value::Null]],
        );
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut names: Vec<String> = zip.file_names().map(|n| n.unwrap().to_string()).collect();
        names.sort();
        assert_eq!(
            names,
            ["account.csv", "export.csv", "modules/m1.wasm", "runs.csv"]
        );
        let read = |zip: &mut zip::ZipArchive<_>, name: &str| {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut zip.by_name(name).unwrap(), &mut s).unwrap();
            s
        };
        assert_eq!(read(&mut zip, "export.csv"), "version,user\r\n1,u1\r\n");
        assert_eq!(
            read(&mut zip, "account.csv"),
            "username,roles\r\nalice,\"[\"\"developer\"\",\"\"viewer\"\"]\"\r\n"
        );
        assert_eq!(
            read(&mut zip, "runs.csv"),
            "id,note\r\nr1,\"'=cmd,x\"\r\nr2,\r\n",
            "formula cells are defused, null is empty"
        );
    }
}
