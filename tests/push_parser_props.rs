//! No input makes the push parser panic; every refusal is one line. Budget: under 10 s
//! (proptest's default 256 cases per property, seeded by proptest's own persistence).

use proptest::prelude::*;

fn tz() -> chrono_tz::Tz {
    chrono_tz::America::New_York
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Err(e) = connector::push::parse(&body, "MC", tz()) {
            prop_assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn arbitrary_json_shaped_like_a_notification_never_panics(
        query in prop_oneof![Just("MC-items".to_string()), Just("MC-inventory".to_string()), ".{0,12}"],
        id in prop_oneof![Just(serde_json::json!("abc")), Just(serde_json::json!(7)), Just(serde_json::Value::Null)],
        key in prop_oneof![Just(serde_json::json!("IT-1")), Just(serde_json::json!(5)), Just(serde_json::Value::Null), Just(serde_json::json!([1]))],
        modified in prop_oneof![Just(serde_json::json!("2026-11-26T10:00:00")), ".{0,30}".prop_map(serde_json::Value::from), Just(serde_json::json!(12))],
        ticks in any::<i64>(),
    ) {
        let body = serde_json::json!({
            "Query": query, "Id": id, "TimeStamp": ticks,
            "Inserted": [{"InventoryID": key, "WarehouseID": "WH", "LastModifiedDateTime": modified}],
            "Deleted": [{"InventoryID": key, "WarehouseID": "WH", "LastModifiedDateTime": null}],
        });
        let _ = connector::push::parse(body.to_string().as_bytes(), "MC", tz());
    }
}
