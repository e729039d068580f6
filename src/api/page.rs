//! `GET /` and `GET /console/*`: the duty-officer console, a static single page whose assets
//! are compiled into the binary (plant networks have no internet, so nothing comes from a
//! CDN). The page reads everything through `/api/v1` with the operator's token, so serving it
//! needs no authentication and it carries no plant data itself.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The page, its script and its style sheet, as built into the binary.
const INDEX_HTML: &str = include_str!("console/index.html");
const CONSOLE_JS: &str = include_str!("console/console.js");
const CONSOLE_CSS: &str = include_str!("console/console.css");
/// The alarm performance page (报警绩效) and its script.
const PERFORMANCE_HTML: &str = include_str!("console/performance.html");
const PERFORMANCE_JS: &str = include_str!("console/performance.js");
/// The completeness page (数据完整率) and its script.
const COMPLETENESS_HTML: &str = include_str!("console/completeness.html");
const COMPLETENESS_JS: &str = include_str!("console/completeness.js");
/// uPlot 1.6.32 (MIT, `console/vendor/uplot-LICENSE`), unmodified from its npm package: the
/// trend charts, small (50 KB) and without dependencies, served from the gateway itself.
const UPLOT_JS: &str = include_str!("console/vendor/uplot-1.6.32.iife.min.js");
const UPLOT_CSS: &str = include_str!("console/vendor/uplot-1.6.32.min.css");

/// Only our own scripts, styles and API; no framing by other sites.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Revalidate on every load, so an upgraded gateway never runs an old script.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

/// The duty-officer console (HTML page; it asks for a token itself).
#[utoipa::path(get, path = "/", tag = "console",
    responses((status = 200, description = "The console page", body = String, content_type = "text/html")))]
pub(super) async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

/// The alarm performance page: the week's alarm KPIs with tuning advice for the bad actors
/// (HTML page; it uses the token the console keeps for the tab).
#[utoipa::path(get, path = "/performance", tag = "console",
    responses((status = 200, description = "The alarm performance page", body = String, content_type = "text/html")))]
pub(super) async fn performance() -> Response {
    asset("text/html; charset=utf-8", PERFORMANCE_HTML)
}

/// The completeness page: online rate and data completeness per hazard source, day and shift,
/// with the gaps and the daily report (HTML page; it uses the token the console keeps for the
/// tab).
#[utoipa::path(get, path = "/completeness", tag = "console",
    responses((status = 200, description = "The completeness page", body = String, content_type = "text/html")))]
pub(super) async fn completeness() -> Response {
    asset("text/html; charset=utf-8", COMPLETENESS_HTML)
}

/// The console's script and style sheet.
#[utoipa::path(get, path = "/console/{file}", tag = "console",
    params(("file" = String, Path, description = "`console.js`, `console.css`, `performance.js`, `completeness.js`, `uplot.js` or `uplot.css`")),
    responses(
        (status = 200, description = "The asset", content(
            (String = "text/javascript"),
            (String = "text/css"),
        )),
        (status = 404, description = "No such asset"),
    ))]
pub(super) async fn file(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "console.js" => asset("text/javascript; charset=utf-8", CONSOLE_JS),
        "console.css" => asset("text/css; charset=utf-8", CONSOLE_CSS),
        "performance.js" => asset("text/javascript; charset=utf-8", PERFORMANCE_JS),
        "completeness.js" => asset("text/javascript; charset=utf-8", COMPLETENESS_JS),
        "uplot.js" => asset("text/javascript; charset=utf-8", UPLOT_JS),
        "uplot.css" => asset("text/css; charset=utf-8", UPLOT_CSS),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_assets_that_are_served() {
        for src in [
            "/console/console.js",
            "/console/console.css",
            "/console/uplot.js",
            "/console/uplot.css",
        ] {
            assert!(INDEX_HTML.contains(src), "index.html links {src}");
        }
        assert!(
            !INDEX_HTML.contains("http://") && !INDEX_HTML.contains("https://"),
            "no external URL"
        );
        assert!(
            !CONSOLE_JS.contains("http://") && !CONSOLE_JS.contains("https://"),
            "no external URL"
        );
    }

    #[test]
    fn the_performance_page_loads_only_assets_that_are_served() {
        for src in [
            "/console/performance.js",
            "/console/console.css",
            "/console/uplot.js",
            "/console/uplot.css",
        ] {
            assert!(PERFORMANCE_HTML.contains(src), "performance.html links {src}");
        }
        for text in [PERFORMANCE_HTML, PERFORMANCE_JS] {
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "no external URL"
            );
        }
        assert!(
            INDEX_HTML.contains("href=\"/performance\""),
            "the console links the page"
        );
    }

    #[test]
    fn the_completeness_page_loads_only_assets_that_are_served() {
        for src in [
            "/console/completeness.js",
            "/console/console.css",
            "/console/uplot.js",
            "/console/uplot.css",
        ] {
            assert!(COMPLETENESS_HTML.contains(src), "completeness.html links {src}");
        }
        for text in [COMPLETENESS_HTML, COMPLETENESS_JS] {
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "no external URL"
            );
        }
        assert!(
            INDEX_HTML.contains("href=\"/completeness\" target=\"_blank\""),
            "the console links the page, in a new tab"
        );
    }
}
