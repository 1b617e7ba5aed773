//! What the dashboard's Compliance page shows (system:audit): `GET /compliance/controls`, soc2.yml's
//! controls checked live with their evidence, and `GET /compliance/privacy`, the privacy settings
//! in force, the last retention run and anonymisation pass, and every account's export requests.
//! Erasure requests are `GET /erasures`.

use axum::{Json, extract::State};
use platform::{
    Platform,
    compliance::{controls::Control, overview::Overview},
};

use super::{ApiError, Caller};

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
