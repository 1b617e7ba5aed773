//! Exporting the whole audit log a filter selects, as CSV or JSON, page by page: the HTTP layer
//! only turns [`AuditExport::next_chunk`] into a response body.
//!
//! The first page is read (and the export recorded as `data_export`, by
//! [`AuditService::export`]) before anything is sent, so a refusal or a bad filter is a proper
//! error; a failure later ends the body early.

use super::{AuditPage, AuditParams, AuditQuery, CSV_HEADER, csv_row};
use crate::{
    access::Principal,
    audit::{AuditError, AuditService},
};

/// Rows read per page while exporting.
const EXPORT_PAGE: u64 = 500;

/// The format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Json,
}

impl ExportFormat {
    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Json => "application/json",
        }
    }

    /// The file name extension (also the `format` recorded in the `data_export` event).
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
        }
    }
}

/// An export under way, newest event first; see [`AuditService::start_export`].
#[derive(Debug)]
pub struct AuditExport {
    audit: AuditService,
    principal: Principal,
    query: AuditQuery,
    format: ExportFormat,
    /// The page read but not yet written.
    page: Option<AuditPage>,
    started: bool,
    /// Whether a JSON element was written (the next one needs a comma).
    wrote: bool,
    done: bool,
}

impl AuditService {
    /// Starts exporting every event `params` selects (paging parameters are ignored): checks the
    /// principal and the filter, records `data_export` and reads the first page.
    pub async fn start_export(
        &self,
        principal: &Principal,
        params: AuditParams,
        format: ExportFormat,
    ) -> Result<AuditExport, AuditError> {
        let filter = serde_json::to_value(&params).unwrap_or_default();
        let mut query = AuditQuery::from_params(&AuditParams {
            after: String::new(),
            limit: None,
            ..params
        })?;
        query.limit = EXPORT_PAGE;
        let first = self
            .export(principal, &query, filter, format.extension())
            .await?;
        Ok(AuditExport {
            audit: self.clone(),
            principal: principal.clone(),
            query,
            format,
            page: Some(first),
            started: false,
            wrote: false,
            done: false,
        })
    }
}

impl AuditExport {
    pub fn format(&self) -> ExportFormat {
        self.format
    }

    /// The next piece of the body (the header or opening bracket comes with the first), or `None`
    /// once it is complete. After an error the export is over.
    pub async fn next_chunk(&mut self) -> Option<Result<String, AuditError>> {
        if self.done {
            return None;
        }
        let mut out = String::new();
        if !self.started {
            self.started = true;
            out.push_str(match self.format {
                ExportFormat::Csv => CSV_HEADER,
                ExportFormat::Json => "[",
            });
        }
        let page = match self.page.take() {
            Some(page) => page,
            None => match self.audit.search(&self.principal, &self.query).await {
                Ok(page) => page,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            },
        };
        for event in &page.events {
            match self.format {
                ExportFormat::Csv => out.push_str(&csv_row(event)),
                ExportFormat::Json => {
                    if self.wrote {
                        out.push(',');
                    }
                    self.wrote = true;
                    out.push_str(&serde_json::to_string(event).unwrap_or_default());
                }
            }
        }
        match page.next {
            Some(next) => self.query.after = Some(next),
            None => {
                self.done = true;
                if self.format == ExportFormat::Json {
                    out.push(']');
                }
            }
        }
        Some(Ok(out))
    }
}
