//! `GET /api/v1/openapi.json`: the API's OpenAPI 3.1 document, generated from the handlers'
//! annotations and the response types, so it cannot drift from the code it describes.

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    ack_many, admin, alarms, commands, completeness, devices, events, kpi, ops, page, points, session, tuning,
};

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
        kpi::kpi,
        completeness::ledger,
        completeness::report_csv,
        completeness::report_json,
        kpi::report_html,
        kpi::report_csv,
        commands::ack,
        ack_many::ack_many,
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
        super::pair::status,
        super::pair::handover,
        admin::reload,
        page::index,
        page::performance,
        page::completeness,
        page::file,
        session::settings,
        tuning::suggestions,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> serde_json::Value {
        serde_json::to_value(ApiDoc::openapi()).unwrap()
    }

    #[test]
    fn every_duration_pattern_is_the_config_grammar() {
        let text = doc().to_string();
        let patterns: Vec<&str> = text
            .match_indices("\"pattern\":\"")
            .map(|(i, m)| &text[i + m.len()..])
            .collect();
        let durations: Vec<&str> = patterns
            .iter()
            .filter_map(|p| p.split('"').next())
            .filter(|p| p.contains("ms|s"))
            .collect();
        assert!(!durations.is_empty(), "the shelve duration states its pattern");
        for p in durations {
            assert_eq!(p, crate::spec::units::DURATION_PATTERN);
        }
    }

    #[test]
    fn every_route_is_described() {
        let doc = doc();
        let paths: Vec<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
        for p in [
            "/api/v1/points",
            "/api/v1/points/{id}/history",
            "/api/v1/devices",
            "/api/v1/alarms",
            "/api/v1/alarms/summary",
            "/api/v1/alarms/history",
            "/api/v1/kpi",
            "/api/v1/completeness",
            "/api/v1/completeness/report.csv",
            "/api/v1/completeness/report.json",
            "/api/v1/kpi/report.html",
            "/api/v1/kpi/report.csv",
            "/api/v1/alarms/{id}/ack",
            "/api/v1/alarms/ack",
            "/api/v1/alarms/{id}/shelve",
            "/api/v1/alarms/{id}/unshelve",
            "/api/v1/alarms/{id}/reset",
            "/api/v1/alarms/{id}/out-of-service",
            "/api/v1/alarms/{id}/return-to-service",
            "/api/v1/events",
            "/api/v1/openapi.json",
            "/healthz",
            "/readyz",
            "/metrics",
            "/api/v1/admin/reload",
            "/",
            "/console/{file}",
            "/api/v1/console",
            "/api/v1/tuning",
            "/performance",
            "/completeness",
            "/api/v1/pair",
            "/api/v1/pair/handover",
        ] {
            assert!(paths.contains(&p), "{p} missing from {paths:?}");
        }
        assert_eq!(paths.len(), 33, "a route was added: list it here and in the router");
    }

    #[test]
    fn the_feed_is_an_event_stream_and_protected_routes_name_the_bearer_scheme() {
        let doc = doc();
        let feed = &doc["paths"]["/api/v1/events"]["get"];
        assert!(feed["responses"]["200"]["content"]["text/event-stream"].is_object());
        assert_eq!(feed["security"][0]["bearer"], serde_json::json!([]));
        assert!(
            feed["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "Last-Event-ID")
        );
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        let shelve = &doc["paths"]["/api/v1/alarms/{id}/shelve"]["post"];
        for code in ["200", "400", "401", "403", "404", "409", "413", "415", "422"] {
            assert!(shelve["responses"][code].is_object(), "shelve documents {code}");
        }
        assert!(
            doc["paths"]["/healthz"]["get"]["security"].is_null(),
            "health stays open"
        );
    }
}
