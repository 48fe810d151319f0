//! The key store on a real SQLite file and a real PostgreSQL database: keys
//! made once and durably, erasure, the blind index, KEK rotation and backup.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use sqlx::Connection;
use verkosto_keys::{
    open_all, seal_paths, sealed_strings, Backend, FileKeys, KeyEncryptionKeys, KeyError, KeyStore,
    KeyStoreOptions,
};

type Kek = Arc<dyn KeyEncryptionKeys>;

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("keys.db").display())
}

async fn pg_url() -> String {
    verkosto_testkit::PgServer::shared()
        .await
        .fresh_database()
        .await
        .expect("a fresh PostgreSQL database")
}

fn random_kek() -> Kek {
    Arc::new(FileKeys::random())
}

/// Whether `a` and `b` are the same key: what one seals, the other opens.
fn same_key(a: &verkosto_keys::CaseKey, b: &verkosto_keys::CaseKey) -> bool {
    b.open(&a.seal("probe", "probe")).is_ok()
}

// ---- a key is made once, and kept ------------------------------------------

async fn a_case_key_is_made_once_and_kept(url: &str) {
    let kek = random_kek();
    // Two stores, as two processes would have: separate caches and pools.
    let a = KeyStore::open(url, kek.clone()).await.unwrap();
    let b = KeyStore::open(url, kek.clone()).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { store.case_key("case-new").await.unwrap() })
        })
        .collect();
    let mut keys = Vec::new();
    for t in tasks {
        keys.push(t.await.unwrap());
    }
    for k in &keys {
        assert_eq!(k.case_id(), "case-new");
        assert!(same_key(&keys[0], k));
    }
    assert_eq!(
        a.kek_usage().await.unwrap()[&kek.current_id()],
        2,
        "one data key and the index key"
    );
    let sealed = keys[0].seal("event-1", "Anna K");
    assert!(a.existing_case_key("case-unknown").await.unwrap().is_none());
    a.close().await;
    b.close().await;

    // Durable: a new store over the same database opens what was sealed.
    let reopened = KeyStore::open(url, kek.clone()).await.unwrap();
    let key = reopened
        .existing_case_key("case-new")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(key.open(&sealed).unwrap(), "Anna K");
    assert_eq!(
        reopened
            .case_key("case-new")
            .await
            .unwrap()
            .open(&sealed)
            .unwrap(),
        "Anna K"
    );
    assert!(reopened
        .existing_case_key("case-unknown")
        .await
        .unwrap()
        .is_none());
    // Asking did not make one.
    assert!(reopened
        .existing_case_key("case-unknown")
        .await
        .unwrap()
        .is_none());
    // Another KEK does not open the store.
    reopened.close().await;
    assert!(matches!(
        KeyStore::open(url, random_kek()).await,
        Err(KeyError::UnknownKek(id)) if id == kek.current_id()
    ));
}

#[tokio::test]
async fn sqlite_a_case_key_is_made_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    a_case_key_is_made_once_and_kept(&sqlite_url(dir.path())).await;
}

#[tokio::test]
async fn postgres_a_case_key_is_made_once_and_kept() {
    a_case_key_is_made_once_and_kept(&pg_url().await).await;
}

// ---- destroying a key erases the case ---------------------------------------

async fn destroying_a_key_erases_the_case(url: &str) {
    let kek = random_kek();
    let store = KeyStore::open(url, kek.clone()).await.unwrap();
    let key = store.case_key("case-1").await.unwrap();
    let kept = store.case_key("case-2").await.unwrap();
    let mut payload = json!({"title": "Anna K:n asia", "agenda": ["Asuminen"], "n": 1});
    seal_paths(&mut payload, &["title", "agenda[]"], &key, "event-1").unwrap();
    let other = kept.seal("event-2", "Kalle");
    store.index("case-1", "name", "Anna K").await.unwrap();
    store.index("case-2", "name", "Anna K").await.unwrap();
    assert_eq!(
        store.find("name", "anna k").await.unwrap(),
        ["case-1", "case-2"]
    );

    assert!(store.destroy("case-1").await.unwrap());
    assert!(store.existing_case_key("case-1").await.unwrap().is_none());
    // Never made again: the case is erased.
    assert!(matches!(
        store.case_key("case-1").await,
        Err(KeyError::Destroyed(c)) if c == "case-1"
    ));
    // What was sealed cannot be opened through the store any more.
    let mut read = payload.clone();
    let key_now = store.existing_case_key("case-1").await.unwrap();
    assert_eq!(open_all(&mut read, key_now.as_ref()), 0);
    assert_eq!(read, json!({"title": null, "agenda": [null], "n": 1}));
    assert!(sealed_strings(&read).is_empty());
    // The old key, still in a caller's hands, opens it; nothing else does.
    assert!(key.open(payload["title"].as_str().unwrap()).is_ok());
    // The blind index forgot the case, and keeps the other one.
    assert_eq!(store.find("name", "anna k").await.unwrap(), ["case-2"]);
    assert!(matches!(
        store.index("case-1", "name", "Anna K").await,
        Err(KeyError::NoKey(c)) if c == "case-1"
    ));
    // Twice, or a case without a key: nothing was there.
    assert!(!store.destroy("case-1").await.unwrap());
    assert!(!store.destroy("case-never").await.unwrap());
    assert!(matches!(
        store.case_key("case-never").await,
        Err(KeyError::Destroyed(_))
    ));
    // The other case is untouched.
    let kept_now = store.case_key("case-2").await.unwrap();
    assert_eq!(kept_now.open(&other).unwrap(), "Kalle");
    store.close().await;

    // The same after reopening.
    let reopened = KeyStore::open(url, kek).await.unwrap();
    assert!(reopened
        .existing_case_key("case-1")
        .await
        .unwrap()
        .is_none());
    assert_eq!(reopened.find("name", "Anna K").await.unwrap(), ["case-2"]);
    assert_eq!(reopened.kek_usage().await.unwrap().values().sum::<u64>(), 2);
}

#[tokio::test]
async fn sqlite_destroying_a_key_erases_the_case() {
    let dir = tempfile::tempdir().unwrap();
    destroying_a_key_erases_the_case(&sqlite_url(dir.path())).await;
}

#[tokio::test]
async fn postgres_destroying_a_key_erases_the_case() {
    destroying_a_key_erases_the_case(&pg_url().await).await;
}

// ---- another process's cache -----------------------------------------------

async fn another_store_uses_its_cached_key_until_evicted(url: &str) {
    let kek = random_kek();
    let a = KeyStore::open(url, kek.clone()).await.unwrap();
    let b = KeyStore::open(url, kek.clone()).await.unwrap();
    a.case_key("case-1").await.unwrap();
    assert!(b.existing_case_key("case-1").await.unwrap().is_some());
    assert!(a.destroy("case-1").await.unwrap());
    // b still holds it in memory (documented: until evicted or cache_ttl).
    assert!(b.existing_case_key("case-1").await.unwrap().is_some());
    b.evict("case-1");
    assert!(b.existing_case_key("case-1").await.unwrap().is_none());

    // With no time to live, nothing is kept at all.
    let c = KeyStore::open_with(
        url,
        kek,
        KeyStoreOptions {
            cache_ttl: std::time::Duration::ZERO,
            ..KeyStoreOptions::default()
        },
    )
    .await
    .unwrap();
    c.case_key("case-2").await.unwrap();
    assert!(a.destroy("case-2").await.unwrap());
    assert!(c.existing_case_key("case-2").await.unwrap().is_none());
}

#[tokio::test]
async fn sqlite_another_store_uses_its_cached_key_until_evicted() {
    let dir = tempfile::tempdir().unwrap();
    another_store_uses_its_cached_key_until_evicted(&sqlite_url(dir.path())).await;
}

#[tokio::test]
async fn postgres_another_store_uses_its_cached_key_until_evicted() {
    another_store_uses_its_cached_key_until_evicted(&pg_url().await).await;
}

// ---- the blind index --------------------------------------------------------

async fn the_blind_index_finds_normalized_names(url: &str) {
    let kek = random_kek();
    let store = KeyStore::open(url, kek.clone()).await.unwrap();
    for case in ["case-1", "case-2", "case-3"] {
        store.case_key(case).await.unwrap();
    }
    store.index("case-1", "name", "anna k").await.unwrap();
    store.index("case-2", "name", "ANNA\tK").await.unwrap();
    store.index("case-2", "name", "Anna K").await.unwrap(); // the same again
    store.index("case-3", "alias", "Anna K").await.unwrap();
    store.index("case-3", "name", "   ").await.unwrap(); // nothing to index
    assert_eq!(
        store.find("name", "  Anna  K ").await.unwrap(),
        ["case-1", "case-2"]
    );
    assert_eq!(store.find("alias", "anna k").await.unwrap(), ["case-3"]);
    assert!(store.find("name", "anna").await.unwrap().is_empty());
    assert!(store.find("name", "").await.unwrap().is_empty());
    // Tokens: the same for the same normalized text, and no name in them.
    let token = store.index_token("name", "  Anna  K ");
    assert_eq!(token, store.index_token("name", "anna k"));
    assert_ne!(token, store.index_token("alias", "anna k"));
    assert_eq!(token.len(), 64);
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    // A case without a key cannot be indexed.
    assert!(matches!(
        store.index("case-none", "name", "Anna K").await,
        Err(KeyError::NoKey(_))
    ));
    assert!(store.unindex("case-1", "name", "ANNA K").await.unwrap());
    assert!(!store.unindex("case-1", "name", "ANNA K").await.unwrap());
    assert_eq!(store.find("name", "anna k").await.unwrap(), ["case-2"]);
    store.close().await;

    // The index key is the deployment's, kept: the same tokens after reopening.
    let reopened = KeyStore::open(url, kek).await.unwrap();
    assert_eq!(reopened.index_token("name", "Anna K"), token);
    assert_eq!(reopened.find("name", "anna k").await.unwrap(), ["case-2"]);
    // Another store has another index key.
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = KeyStore::open(&sqlite_url(dir.path()), random_kek())
        .await
        .unwrap();
    assert_ne!(elsewhere.index_token("name", "anna k"), token);
}

#[tokio::test]
async fn sqlite_the_blind_index_finds_normalized_names() {
    let dir = tempfile::tempdir().unwrap();
    the_blind_index_finds_normalized_names(&sqlite_url(dir.path())).await;
}

#[tokio::test]
async fn postgres_the_blind_index_finds_normalized_names() {
    the_blind_index_finds_normalized_names(&pg_url().await).await;
}

// ---- nothing of a destroyed key is left behind ------------------------------

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn sqlite_a_destroyed_key_leaves_no_bytes_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.db");
    let url = sqlite_url(dir.path());
    let store = KeyStore::open(&url, random_kek()).await.unwrap();
    for i in 0..50 {
        store.case_key(&format!("case-{i}")).await.unwrap();
    }
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let wrapped = |case: &'static str| {
        sqlx::query_scalar::<_, Vec<u8>>("SELECT wrapped FROM data_keys WHERE case_id = $1")
            .bind(case)
    };
    let destroyed = wrapped("case-7").fetch_one(&mut conn).await.unwrap();
    let kept = wrapped("case-8").fetch_one(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    assert_eq!(destroyed.len(), 72);

    assert!(store.destroy("case-7").await.unwrap());
    store.close().await;

    let bytes = std::fs::read(&file).unwrap();
    assert!(
        contains(&bytes, &kept),
        "the check finds a key that is there"
    );
    assert!(
        !contains(&bytes, &destroyed),
        "the destroyed key's bytes are in the file"
    );
    // Not half of it either.
    assert!(!contains(&bytes, &destroyed[24..48]));
    for suffix in ["-wal", "-journal", "-shm"] {
        let mut name = file.clone().into_os_string();
        name.push(suffix);
        assert!(!Path::new(&name).exists(), "{suffix} file left");
    }
}

#[tokio::test]
async fn postgres_a_destroyed_key_is_vacuumed_away() {
    let url = pg_url().await;
    let store = KeyStore::open(&url, random_kek()).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    for i in 0..50 {
        store.case_key(&format!("case-{i}")).await.unwrap();
    }
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let wrapped = |case: &'static str| {
        sqlx::query_scalar::<_, Vec<u8>>(
            "SELECT wrapped FROM verkosto_keys.data_keys WHERE case_id = $1",
        )
        .bind(case)
    };
    let destroyed = wrapped("case-7").fetch_one(&mut conn).await.unwrap();
    let kept = wrapped("case-8").fetch_one(&mut conn).await.unwrap();
    assert!(store.destroy("case-7").await.unwrap());

    // Every tuple version on the table's pages, live or dead (pageinspect).
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pageinspect")
        .execute(&mut conn)
        .await
        .expect("pageinspect, from PostgreSQL's contrib");
    let tuples: Vec<Option<Vec<u8>>> = sqlx::query_scalar(
        "SELECT t_data FROM generate_series(0, \
             (pg_relation_size('verkosto_keys.data_keys') / 8192)::int - 1) AS blkno, \
         LATERAL heap_page_items(get_raw_page('verkosto_keys.data_keys', blkno))",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let tuples: Vec<Vec<u8>> = tuples.into_iter().flatten().collect();
    assert!(
        tuples.iter().any(|t| contains(t, &kept)),
        "the check finds a key that is there"
    );
    assert!(
        !tuples.iter().any(|t| contains(t, &destroyed)),
        "a tuple version still holds the destroyed key"
    );
    conn.close().await.unwrap();
}

// ---- the schema on PostgreSQL -----------------------------------------------

#[tokio::test]
async fn postgres_the_schema_is_closed_to_others() {
    let url = pg_url().await;
    let store = KeyStore::open(&url, random_kek()).await.unwrap();
    store.case_key("case-1").await.unwrap();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    // The test server's role is a superuser: the NOLOGIN role owns it all.
    let owners: Vec<String> = sqlx::query_scalar(
        "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'verkosto_keys' \
         UNION ALL SELECT tableowner::text FROM pg_tables WHERE schemaname = 'verkosto_keys'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(owners, ["verkosto_keys"; 4]);
    let login: bool =
        sqlx::query_scalar("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'verkosto_keys'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(!login);
    // A role that is not a member reaches nothing.
    let stranger = format!("verkosto_test_{}", std::process::id());
    sqlx::query(&format!("DROP ROLE IF EXISTS {stranger}"))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE ROLE {stranger} NOLOGIN"))
        .execute(&mut conn)
        .await
        .unwrap();
    let reach: (bool, bool) = sqlx::query_as(&format!(
        "SELECT has_schema_privilege('{stranger}', 'verkosto_keys', 'USAGE'), \
                has_table_privilege('{stranger}', 'verkosto_keys.data_keys', 'SELECT')"
    ))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    sqlx::query(&format!("DROP ROLE {stranger}"))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(reach, (false, false));
    // A backup is pg_dump's job there.
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        store.backup(dir.path()).await,
        Err(KeyError::Config(why)) if why.contains("pg_dump --schema=verkosto_keys")
    ));
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_url_of_another_kind_is_refused() {
    assert!(matches!(
        KeyStore::open("mysql://x/y", random_kek()).await,
        Err(KeyError::Config(_))
    ));
}

// ---- rotation ---------------------------------------------------------------

/// Makes keys for three cases and seals a value for each; returns them.
async fn seal_three(store: &KeyStore) -> Vec<(String, String)> {
    let mut sealed = Vec::new();
    for i in 1..=3 {
        let case = format!("case-{i}");
        let key = store.case_key(&case).await.unwrap();
        sealed.push((
            case.clone(),
            key.seal("event-1", &format!("text of {case}")),
        ));
        store
            .index(&case, "name", &format!("Client {i}"))
            .await
            .unwrap();
    }
    sealed
}

/// Every value opens through the store, and the index still finds them.
async fn all_open(store: &KeyStore, sealed: &[(String, String)]) {
    for (i, (case, value)) in sealed.iter().enumerate() {
        let key = store.existing_case_key(case).await.unwrap().unwrap();
        assert_eq!(key.open(value).unwrap(), format!("text of {case}"));
        assert_eq!(
            store
                .find("name", &format!("client {}", i + 1))
                .await
                .unwrap(),
            [case.as_str()]
        );
    }
}

async fn a_rotated_kek_replaces_the_old_one(url: &str, sqlite: bool) {
    let dir = tempfile::tempdir().unwrap();
    let kek_path = dir.path().join("kek");
    let old = FileKeys::generate(&kek_path).unwrap();
    let old_id = old.current_id();
    let store = KeyStore::open(url, Arc::new(FileKeys::load(&kek_path).unwrap()))
        .await
        .unwrap();
    let sealed = seal_three(&store).await;
    let backup = if sqlite {
        Some(store.backup(&dir.path().join("backup")).await.unwrap())
    } else {
        None
    };

    let next = Arc::new(FileKeys::prepare_rotation(&kek_path).unwrap());
    let new_id = next.current_id();
    assert_eq!(
        store.rotate(next.clone()).await.unwrap(),
        4,
        "three data keys and the index key"
    );
    assert_eq!(store.current_kek_id(), new_id);
    assert_eq!(
        store
            .kek_usage()
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        [(new_id.clone(), 4)]
    );
    // Nothing left to do.
    assert_eq!(store.rotate(next.clone()).await.unwrap(), 0);
    // A key made now is wrapped under the new KEK.
    store.case_key("case-4").await.unwrap();
    FileKeys::finish_rotation(&kek_path).unwrap();
    store.close().await;

    // The old key file is gone: the path holds the new KEK alone.
    assert!(!FileKeys::next_path(&kek_path).exists());
    let after = FileKeys::load(&kek_path).unwrap();
    assert_eq!(after.ids(), [new_id.as_str()]);
    assert!(!std::fs::read_to_string(&kek_path).unwrap().is_empty());
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("kek"))
        .collect();
    assert_eq!(entries, ["kek"]);

    // The store opens every key with the new KEK file alone.
    let reopened = KeyStore::open(url, Arc::new(after)).await.unwrap();
    all_open(&reopened, &sealed).await;
    assert!(reopened
        .existing_case_key("case-4")
        .await
        .unwrap()
        .is_some());
    assert_eq!(reopened.kek_usage().await.unwrap()[&new_id], 5);
    reopened.close().await;

    // The backup from before the rotation is dead with the old KEK.
    if let Some(backup) = backup {
        let backup_url = format!("sqlite://{}", backup.display());
        assert!(matches!(
            KeyStore::open(&backup_url, Arc::new(FileKeys::load(&kek_path).unwrap())).await,
            Err(KeyError::UnknownKek(id)) if id == old_id
        ));
    }
}

#[tokio::test]
async fn sqlite_a_rotated_kek_replaces_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    a_rotated_kek_replaces_the_old_one(&sqlite_url(dir.path()), true).await;
}

#[tokio::test]
async fn postgres_a_rotated_kek_replaces_the_old_one() {
    a_rotated_kek_replaces_the_old_one(&pg_url().await, false).await;
}

#[tokio::test]
async fn sqlite_a_backup_opens_with_the_kek_it_was_made_under() {
    let dir = tempfile::tempdir().unwrap();
    let kek_path = dir.path().join("kek");
    FileKeys::generate(&kek_path).unwrap();
    let kek: Kek = Arc::new(FileKeys::load(&kek_path).unwrap());
    let store = KeyStore::open(&sqlite_url(dir.path()), kek.clone())
        .await
        .unwrap();
    let sealed = seal_three(&store).await;
    let backup = store.backup(&dir.path().join("backup")).await.unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Never over an existing copy.
    assert!(matches!(
        store.backup(&dir.path().join("backup")).await,
        Err(KeyError::Io { .. })
    ));
    store.close().await;
    let restored = KeyStore::open(&format!("sqlite://{}", backup.display()), kek)
        .await
        .unwrap();
    all_open(&restored, &sealed).await;
}

async fn a_rotation_interrupted_before_finishing_loses_nothing(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let kek_path = dir.path().join("kek");
    FileKeys::generate(&kek_path).unwrap();
    let store = KeyStore::open(url, Arc::new(FileKeys::load(&kek_path).unwrap()))
        .await
        .unwrap();
    let sealed = seal_three(&store).await;

    // Crash after prepare, before rotate: a restart holds both KEKs and
    // wraps new keys under the new one.
    let prepared = FileKeys::prepare_rotation(&kek_path).unwrap();
    store.close().await;
    let loaded = FileKeys::load(&kek_path).unwrap();
    assert_eq!(loaded.ids(), prepared.ids());
    let store = KeyStore::open(url, Arc::new(loaded)).await.unwrap();
    all_open(&store, &sealed).await;
    store.case_key("case-4").await.unwrap();
    assert_eq!(store.kek_usage().await.unwrap().len(), 2);

    // Crash after rotate, before finish: everything still unwraps.
    let next = Arc::new(FileKeys::prepare_rotation(&kek_path).unwrap());
    assert_eq!(
        next.ids(),
        prepared.ids(),
        "the interrupted rotation resumes"
    );
    assert_eq!(store.rotate(next.clone()).await.unwrap(), 4);
    store.close().await;
    let store = KeyStore::open(url, Arc::new(FileKeys::load(&kek_path).unwrap()))
        .await
        .unwrap();
    all_open(&store, &sealed).await;
    assert!(store.existing_case_key("case-4").await.unwrap().is_some());
    store.close().await;

    // Finished at last: the new KEK alone opens everything.
    FileKeys::finish_rotation(&kek_path).unwrap();
    let store = KeyStore::open(url, Arc::new(FileKeys::load(&kek_path).unwrap()))
        .await
        .unwrap();
    all_open(&store, &sealed).await;
    assert_eq!(store.kek_usage().await.unwrap().len(), 1);
}

#[tokio::test]
async fn sqlite_a_rotation_interrupted_before_finishing_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    a_rotation_interrupted_before_finishing_loses_nothing(&sqlite_url(dir.path())).await;
}

#[tokio::test]
async fn postgres_a_rotation_interrupted_before_finishing_loses_nothing() {
    a_rotation_interrupted_before_finishing_loses_nothing(&pg_url().await).await;
}
