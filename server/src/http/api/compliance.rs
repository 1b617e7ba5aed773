//! What the dashboard's Compliance page shows (system:audit): `GET /compliance/controls`, soc2.yml's
//! controls checked live with their evidence, and `GET /compliance/privacy`, the privacy settings
//! in force, the last retention run and anonymisation pass, and every account's export requests.
//! Erasure requests are `GET /erasures`. `GET /compliance/settings` and
//! `PUT /compliance/settings/{file}` read and change privacy.yml and soc2.yml as the dashboard does.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::{Path, State},
};
use platform::{
    Platform,
    compliance::{controls::Control, overview::Overview, settings::SettingsPage},
};
use serde::Deserialize;

use super::{ApiError, Caller, JsonObject};

pub async fn privacy(
    State(platform): State<Platform>,
    Caller(caller): Caller,
) -> Result<Json<Overview>, ApiError> {
    Ok(Json(platform.compliance().overview(&caller).await?))
}

pub async fn controls(
    State(platform): State<Platform>,
    Caller(caller): Caller,
) -> Result<Json<Vec<Control>>, ApiError> {
    Ok(Json(platform.controls(&caller).await?))
}

pub async fn settings(
    State(platform): State<Platform>,
    Caller(caller): Caller,
) -> Result<Json<SettingsPage>, ApiError> {
    Ok(Json(platform.compliance().settings(&caller).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveSettings {
    stamp: String,
    /// Dotted key → value (`true`, `"5y"`, `["json"]`, or the form's text); keys left out keep
    /// their value in force.
    #[serde(default)]
    values: BTreeMap<String, serde_json::Value>,
    /// Drop the dashboard's changes: the file's values apply again.
    #[serde(default)]
    use_file_values: bool,
}

/// A JSON value as the form would have sent it.
fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub async fn save_settings(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(file): Path<String>,
    JsonObject(req): JsonObject<SaveSettings>,
) -> Result<Json<SettingsPage>, ApiError> {
    let values: BTreeMap<String, String> = req
        .values
        .iter()
        .map(|(k, v)| (k.clone(), text(v)))
        .collect();
    let values = (!req.use_file_values).then_some(&values);
    Ok(Json(
        platform
            .compliance()
            .save_settings(&caller, &file, &req.stamp, values)
            .await?,
    ))
}
