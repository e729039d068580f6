//! `GET /api/v1/openapi.json`: the API's OpenAPI 3.1 document, generated from the handlers'
//! annotations and the response types, so it cannot drift from the code it describes.

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{alarms, commands, devices, events, ops, page, points};

/// The document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "hazard-gateway API",
        description = "Current values, history, device health, alarms and operator commands of one \
                       hazard-gateway, its live feed of alarm transitions (Server-Sent Events), and \
                       its health and metrics. Bearer tokens carry a role: viewer < operator < admin.",
    ),
    paths(
        points::list,
        points::history,
        devices::list,
        alarms::active,
        alarms::summary,
        alarms::history,
        commands::ack,
        commands::shelve,
        commands::unshelve,
        commands::reset,
        commands::out_of_service,
        commands::return_to_service,
        events::feed,
        openapi_json,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        page::index,
        page::file,
    ),
    components(schemas(
        super::error::ErrorBody,
        super::feed_readings::ReadingEvent,
        crate::model::AlarmEvent,
    )),
    modifiers(&BearerScheme),
    tags(
        (name = "points", description = "Measured points and their history"),
        (name = "devices", description = "Polled devices and their health"),
        (name = "alarms", description = "Alarms, their history and operator commands"),
        (name = "events", description = "The live feed"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
        (name = "console", description = "The duty-officer console"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` scheme the operations refer to.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from the config's `[[api.tokens]]` (stored there as `hazard-gateway hash-token`).",
                    ))
                    .build(),
            ),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub(super) async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
