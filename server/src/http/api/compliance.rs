//! `GET /compliance/privacy`: what the dashboard's Compliance page shows (system:audit) — the
//! privacy settings in force, the last retention run and anonymisation pass, and every account's
//! export requests. Erasure requests are `GET /erasures`.

use axum::{Json, extract::State};
use platform::{Platform, compliance::overview::Overview};

use super::{ApiError, Caller};

pub async fn privacy(
    State(platform): State<Platform>,
    Caller(caller): Caller,
) -> Result<Json<Overview>, ApiError> {
    Ok(Json(platform.compliance().overview(&caller).await?))
}
