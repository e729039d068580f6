//! The gateway against an independent Modbus TCP implementation (pymodbus, started by the
//! test on a free loopback port): register maps and decoding agree with a peer we did not write.

use crate::support;

use support::{PyModbusPeer, TestGateway, WAIT, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_decodes_registers_served_by_pymodbus() {
    // tank-ltp holding registers: level f32 12.5 (0x41480000), temperature i16 -123 (x0.1),
    // pressure u32 8123 (x0.0001 MPa).
    let holding = [0x4148, 0x0000, 0xFF85, 0x0000, 0x1FBB];
    // ai4-gas-lel input registers in µA: 8 mA, 4 mA, 20 mA, and 3 mA (a broken loop).
    let input = [8000, 4000, 20000, 3000];
    let peer = PyModbusPeer::start(&holding, &input);
    let config = format!(
        r#"
[gateway]
id = "peer-gw"
[api]
listen = "127.0.0.1:0"
[[devices]]
name = "tank"
profile = "tank-ltp"
transport = {{ tcp = "{addr}" }}
interval = "200ms"
[[devices]]
name = "gas"
profile = "ai4-gas-lel"
transport = {{ tcp = "{addr}" }}
interval = "200ms"
"#,
        addr = peer.addr
    );
    let mut gw = TestGateway::start(&config).await;
    wait_for("readings from the peer", WAIT, || async {
        (gw.point("gas/ch4").await["quality"] != "no_data" && gw.point("tank/pressure").await["quality"] != "no_data")
            .then_some(())
    })
    .await;
    let expect = [
        ("tank/level", Some(12.5), "good"),
        ("tank/temperature", Some(-12.3), "good"),
        ("tank/pressure", Some(0.8123), "good"),
        ("gas/ch1", Some(25.0), "good"),
        ("gas/ch2", Some(0.0), "good"),
        ("gas/ch3", Some(100.0), "good"),
        ("gas/ch4", Some(-6.25), "out_of_range"),
    ];
    for (id, value, quality) in expect {
        let p = gw.point(id).await;
        assert_eq!(p["quality"], quality, "{id}: {p}");
        let v = p["value"].as_f64();
        assert!(
            v.zip(value).is_some_and(|(a, b)| (a - b).abs() < 1e-9),
            "{id}: got {v:?}, expected {value:?}"
        );
    }
    // 25 %LEL reaches the first-level set-point; 100 %LEL both; a broken loop raises a
    // sensor-fault alarm, never a concentration alarm.
    let alarms = wait_for("gas alarms", WAIT, || async {
        let a = gw.get_json("/api/v1/alarms").await;
        (a.as_array().unwrap().len() == 4).then_some(a)
    })
    .await;
    let mut ids: Vec<_> = alarms
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["alarm_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![
            "gas/ch1:high",
            "gas/ch3:high",
            "gas/ch3:high_high",
            "gas/ch4:sensor_fault"
        ]
    );
    gw.shutdown().await;
}
