//! The console's leads list over 1,000,000 stored decisions (issue 24): a filtered first page
//! per filter, p50/p99 over repeated calls, on SQLite and (with LEADGATE_BENCH_POSTGRES_URL
//! or LEADGATE_TEST_POSTGRES_URL set) PostgreSQL. Rows are bulk-inserted in SQL, not through
//! the API. Prints a table; asserts nothing (figures, not a test).
//!
//! `cargo bench --bench console_list` (LEADGATE_BENCH_DECISIONS overrides the row count).

use std::time::{Duration, Instant};

use leadgate::store::console::LeadFilter;
use leadgate::store::Store;

const LEADS_PER_DECISION: i64 = 4; // each lead decided four times: the list shows the latest

fn decisions() -> i64 {
    std::env::var("LEADGATE_BENCH_DECISIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn filters() -> Vec<(&'static str, LeadFilter)> {
    let f = |grade: Option<&str>,
             status: Option<&str>,
             route: Option<&str>,
             owner: Option<&str>,
             q: Option<&str>| LeadFilter {
        grade: grade.map(Into::into),
        status: status.map(Into::into),
        route: route.map(Into::into),
        owner: owner.map(Into::into),
        q: q.map(Into::into),
        limit: 50,
        ..Default::default()
    };
    vec![
        ("no filter", f(None, None, None, None, None)),
        ("grade=hot", f(Some("hot"), None, None, None, None)),
        ("status=review", f(None, Some("review"), None, None, None)),
        (
            "route=students",
            f(None, None, Some("students"), None, None),
        ),
        (
            "owner=41629779",
            f(None, None, None, Some("41629779"), None),
        ),
        (
            "grade=warm&status=done",
            f(Some("warm"), Some("done"), None, None, None),
        ),
        ("q=acme", f(None, None, None, None, Some("acme"))),
    ]
}

/// Seed SQL per backend: leads, then decisions cycling through grades, statuses, rules and
/// owners; a record with the fields the list reads and some padding.
fn sqlite_seed(n: i64) -> Vec<String> {
    let leads = n / LEADS_PER_DECISION;
    vec![
        format!("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {leads})
         INSERT INTO leads (id, identity_key, email, domain, data, created_at, updated_at)
         SELECT 'lead-' || i, 'email:p' || i || '@' || (CASE i % 3 WHEN 0 THEN 'acme' WHEN 1 THEN 'globex' ELSE 'initech' END) || '.io',
                'p' || i || '@' || (CASE i % 3 WHEN 0 THEN 'acme' WHEN 1 THEN 'globex' ELSE 'initech' END) || '.io',
                'x.io', '{{}}', 0, 0 FROM s"),
        format!("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})
         INSERT INTO decisions (lead_id, job_id, score, grade, route_rule, record, decided_at)
         SELECT 'lead-' || (1 + i % {leads}), 'job-' || i, i % 100,
                CASE i % 4 WHEN 0 THEN 'hot' WHEN 1 THEN 'warm' WHEN 2 THEN 'cool' ELSE 'cold' END,
                CASE i % 5 WHEN 0 THEN 'students' WHEN 1 THEN 'hot-enterprise' WHEN 2 THEN 'warm-sdr' WHEN 3 THEN 'warm-nurture' ELSE 'fallback' END,
                json_object('status', CASE i % 7 WHEN 0 THEN 'review' WHEN 1 THEN 'failed' ELSE 'done' END,
                            'route', json_object('owner', '416297' || (70 + i % 20)), 'pad', printf('%.300c', 'x')),
                1700000000000 + i * 1000 FROM s"),
    ]
}

fn postgres_seed(n: i64) -> Vec<String> {
    let leads = n / LEADS_PER_DECISION;
    vec![
        format!("INSERT INTO leads (id, identity_key, email, domain, data, created_at, updated_at)
         SELECT 'lead-' || i, 'email:p' || i || '@' || (CASE i % 3 WHEN 0 THEN 'acme' WHEN 1 THEN 'globex' ELSE 'initech' END) || '.io',
                'p' || i || '@' || (CASE i % 3 WHEN 0 THEN 'acme' WHEN 1 THEN 'globex' ELSE 'initech' END) || '.io',
                'x.io', '{{}}', 0, 0 FROM generate_series(1, {leads}) i"),
        format!("INSERT INTO decisions (lead_id, job_id, score, grade, route_rule, record, decided_at)
         SELECT 'lead-' || (1 + i % {leads}), 'job-' || i, i % 100,
                CASE i % 4 WHEN 0 THEN 'hot' WHEN 1 THEN 'warm' WHEN 2 THEN 'cool' ELSE 'cold' END,
                CASE i % 5 WHEN 0 THEN 'students' WHEN 1 THEN 'hot-enterprise' WHEN 2 THEN 'warm-sdr' WHEN 3 THEN 'warm-nurture' ELSE 'fallback' END,
                json_build_object('status', CASE i % 7 WHEN 0 THEN 'review' WHEN 1 THEN 'failed' ELSE 'done' END,
                            'route', json_build_object('owner', '416297' || (70 + i % 20)), 'pad', repeat('x', 300))::text,
                1700000000000 + i * 1000 FROM generate_series(1, {n}) i"),
        "ANALYZE".into(),
    ]
}

async fn measure(backend: &str, store: &Store) {
    const CALLS: usize = 200;
    println!("{backend}: filtered first page (limit 50), {CALLS} calls each");
    println!(
        "  {:<26} {:>6} {:>9} {:>9}",
        "filter", "rows", "p50 ms", "p99 ms"
    );
    for (name, f) in filters() {
        let mut times = Vec::with_capacity(CALLS);
        let mut rows = 0;
        for _ in 0..CALLS {
            let t = Instant::now();
            rows = store.list_leads(&f).await.expect("list").len();
            times.push(t.elapsed());
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "  {:<26} {:>6} {:>9.2} {:>9.2}",
            name,
            rows,
            ms(times[CALLS / 2]),
            ms(times[CALLS * 99 / 100])
        );
    }
}

#[tokio::main]
async fn main() {
    let n = decisions();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Store::open(&url).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let t = Instant::now();
    for sql in sqlite_seed(n) {
        sqlx::query(&sql).execute(&pool).await.unwrap();
    }
    sqlx::query("ANALYZE").execute(&pool).await.unwrap();
    println!(
        "SQLite: {n} decisions seeded in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    measure("SQLite", &store).await;

    let pg = std::env::var("LEADGATE_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("LEADGATE_TEST_POSTGRES_URL"))
        .ok()
        .filter(|u| !u.is_empty());
    let Some(base) = pg else {
        println!("PostgreSQL: not measured (set LEADGATE_BENCH_POSTGRES_URL)");
        return;
    };
    use sqlx::Connection;
    let name = format!("leadgate_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    let store = Store::open(&url).await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let t = Instant::now();
    for sql in postgres_seed(n) {
        sqlx::query(&sql).execute(&pool).await.unwrap();
    }
    println!(
        "PostgreSQL: {n} decisions seeded in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    measure("PostgreSQL", &store).await;
    pool.close().await;
    let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await;
}
