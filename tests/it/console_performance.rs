//! The alarm performance page in headless Chromium: opened from the console's link, it shows
//! what `/api/v1/kpi` and `/api/v1/tuning` answer for a level that chattered through a real
//! Mosquitto — the verdicts, the flood, and the bad actor's suggestion beside its settings.

use crate::support;

use std::time::Duration;

use serde_json::{Value, json};

/// Longest the browser script may take.
const LIMIT: Duration = Duration::from_secs(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_performance_page_shows_the_weeks_kpis_and_the_bad_actors_suggestion() {
    let c = crate::tuning::chattering_level("").await;
    // The site-local ISO week the readings fall in, as the KPI engine names it.
    let weeks =
        c.gw.get_json(&format!("/api/v1/kpi?from={}&to={}&group=week", c.base, c.last))
            .await;
    let week = weeks["weeks"][0]["key"].as_str().expect("a week").to_string();
    let kpi = c.gw.get_json(&format!("/api/v1/kpi?week={week}&group=none")).await;
    let site = &kpi["site"];
    assert_eq!(
        site["bad_actors"]["top"][0]["raises"].as_u64(),
        Some(c.expected),
        "{kpi:#}"
    );
    let verdict = |v: &Value| v["verdict"].as_str().unwrap_or("none").to_string();
    let verdicts = json!({
        "振荡报警": verdict(&site["chattering"]["count"]),
        "泛滥时间占比": verdict(&site["flood"]["pct_time_in_flood"]),
        "10分钟最高": verdict(&site["rate"]["peak_per_10min"]),
        "前 N 位占总量": verdict(&site["bad_actors"]["top_share_pct"]),
    });
    assert_eq!(verdicts["振荡报警"], "over", "the level chattered: {kpi:#}");
    let floods = site["flood"]["periods"].as_array().map_or(0, Vec::len);
    assert!(floods >= 1, "ten minutes of chattering is a flood: {kpi:#}");
    support::console::run_script(
        "console_performance.mjs",
        &format!("{}/", c.gw.base),
        &[
            ("WEEK", &week),
            ("ALARM", "tank/LT-1:high"),
            ("RAISES", &c.expected.to_string()),
            ("FLOODS", &floods.to_string()),
            ("VERDICTS", &verdicts.to_string()),
        ],
        LIMIT,
    )
    .await;
}
