//! Any projection can be dropped and rebuilt by replay with the same result,
//! and redelivered events have no second effect.

use serde_json::json;
use verkosto_e2e::{agency, both_modes, Verkosto};
use verkosto_eventlog::EventLog;

async fn directory_rows(log: &EventLog) -> Vec<(String, String, String)> {
    let mut rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT id, kind, name FROM dir_agencies UNION ALL SELECT id, agency, roles FROM dir_users",
    )
    .fetch_all(log.db().reader())
    .await
    .unwrap();
    rows.sort();
    rows
}

both_modes!(
    the_directory_rebuilds_identically_and_ignores_redelivery,
    |mode| async move {
        let mut v = Verkosto::start(mode).await.unwrap();
        let admin = v.token("admin").await.unwrap();
        for i in 0..5 {
            let (status, _) = v
                .post(
                    &admin,
                    "/api/v1/agencies",
                    &agency(&format!("ngo-{i}"), "ngo"),
                )
                .await
                .unwrap();
            assert_eq!(status, 201);
        }
        let user = json!({ "id": "nora", "agency": "ngo-1", "roles": ["liaison", "facilitator"], "display_name": "Nora" });
        assert_eq!(v.post(&admin, "/api/v1/users", &user).await.unwrap().0, 201);
        let log = v.log().await.unwrap();
        let before = directory_rows(&log).await;
        assert_eq!(before.len(), 6);

        // Redeliver every event: the checkpoint makes it a no-op.
        let projection = verkosto_directory::DirectoryProjection;
        let all = verkosto_e2e::read_everything(&log).await.unwrap();
        log.apply_batch(&projection, &all).await.unwrap();
        assert_eq!(directory_rows(&log).await, before);

        v.halt().await;
        // Drop and rebuild, twice.
        for _ in 0..2 {
            log.reset_projection(&projection).await.unwrap();
            assert!(directory_rows(&log).await.is_empty());
            log.catch_up(&projection).await.unwrap();
            assert_eq!(directory_rows(&log).await, before);
        }
    }
);
