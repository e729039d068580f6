//! The spool without FTP (the FTP push runs against a real server in tests/it/uplink_coal.rs).

use super::*;

fn settings(dir: &Path) -> FileDropSettings {
    FileDropSettings {
        spool_dir: Some(dir.to_path_buf()),
        ftp: None,
        after_push: AfterPush::Move,
    }
}

fn file(name: &str, body: &str) -> Payload {
    Payload {
        body: body.as_bytes().to_vec(),
        attrs: vec![(FILE_NAME_ATTR.to_string(), name.to_string())],
        items: 1,
        urgent: false,
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_spooled_file_is_complete_under_its_name_and_nothing_else_is_left() {
    let tmp = tempfile::tempdir().unwrap();
    // A crash left half a file behind: start-up removes it.
    std::fs::write(tmp.path().join(".part-M_CDSS_20261125080000.txt"), "half").unwrap();
    let mut drop = FileDrop::open(
        "u",
        &settings(tmp.path()),
        Path::new("/nonexistent"),
        Password::default(),
    )
    .unwrap();
    drop.deliver(&file("M_CDSS_20261125080010.txt", "M;m;t~||"))
        .await
        .unwrap();
    assert_eq!(listing(tmp.path()), ["M_CDSS_20261125080010.txt", "rejected", "sent"]);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("M_CDSS_20261125080010.txt")).unwrap(),
        "M;m;t~||"
    );
}

#[tokio::test]
async fn the_same_payload_again_is_not_written_twice_and_other_bytes_take_the_next_second() {
    let tmp = tempfile::tempdir().unwrap();
    let mut drop = FileDrop::open(
        "u",
        &settings(tmp.path()),
        Path::new("/nonexistent"),
        Password::default(),
    )
    .unwrap();
    let name = "M_YCBJ_20261125235959.txt";
    drop.deliver(&file(name, "first")).await.unwrap();
    drop.deliver(&file(name, "first")).await.unwrap();
    drop.deliver(&file(name, "second")).await.unwrap();
    drop.deliver(&file(name, "second")).await.unwrap();
    drop.deliver(&file(name, "third")).await.unwrap();
    let files: Vec<_> = listing(tmp.path())
        .into_iter()
        .filter(|n| n.ends_with(".txt"))
        .collect();
    assert_eq!(
        files,
        [
            "M_YCBJ_20261125235959.txt",
            "M_YCBJ_20261126000000.txt",
            "M_YCBJ_20261126000001.txt"
        ]
    );
    assert_eq!(std::fs::read_to_string(tmp.path().join(&files[1])).unwrap(), "second");
    assert_eq!(std::fs::read_to_string(tmp.path().join(&files[2])).unwrap(), "third");
}

#[tokio::test]
async fn a_payload_without_a_plain_file_name_is_refused_for_good() {
    let tmp = tempfile::tempdir().unwrap();
    let mut drop = FileDrop::open(
        "u",
        &settings(tmp.path()),
        Path::new("/nonexistent"),
        Password::default(),
    )
    .unwrap();
    for name in ["../escape.txt", ".hidden", "a/b.txt", ""] {
        let err = drop.deliver(&file(name, "x")).await.unwrap_err();
        assert!(matches!(err, TransportError::Rejected(_)), "{name}: {err}");
    }
    let mut none = file("x", "x");
    none.attrs.clear();
    assert!(matches!(drop.deliver(&none).await, Err(TransportError::Rejected(_))));
    assert_eq!(listing(tmp.path()), ["rejected", "sent"]);
}

#[test]
fn names_without_a_time_get_a_counter() {
    assert_eq!(spool::next_name("report.txt", 2), "report-2.txt");
    assert_eq!(
        spool::next_name("M_CDSS_20261231235959.txt", 1),
        "M_CDSS_20270101000000.txt"
    );
}

#[test]
fn validation_names_address_user_and_timeout() {
    let s: FileDropSettings = toml::from_str(
        "spool_dir = \"/var/spool/coal\"\nftp = { address = \"ftp.example\", user = \"\", timeout = \"0s\", password = { env = \"P\" } }\n",
    )
    .unwrap();
    let keys: Vec<_> = s.validate().into_iter().map(|p| p.key).collect();
    assert_eq!(keys, ["ftp.address", "ftp.user", "ftp.timeout"]);
    let err = toml::from_str::<FileDropSettings>("spool_dir = \"/x\"\nafter_push = \"archive\"\n").unwrap_err();
    assert!(err.to_string().contains("archive"), "{err}");
    let password = Password("s3cret".into());
    assert!(!format!("{password:?}").contains("s3cret"));
}
