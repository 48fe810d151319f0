//! Many rows in one statement, for projections that write a batch of
//! events at once: `INSERT ... VALUES (..), (..)` and `... IN (VALUES ..)`
//! on both backends. One round trip per thousand rows instead of one per
//! row is what lets a replay of a million events finish in seconds.

use sqlx::AnyConnection;

use crate::DbKind;

/// One value of a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Int(i64),
    Text(Option<String>),
}

impl From<i64> for Param {
    fn from(v: i64) -> Param {
        Param::Int(v)
    }
}

impl From<&str> for Param {
    fn from(v: &str) -> Param {
        Param::Text(Some(v.to_string()))
    }
}

impl From<String> for Param {
    fn from(v: String) -> Param {
        Param::Text(Some(v))
    }
}

impl From<Option<String>> for Param {
    fn from(v: Option<String>) -> Param {
        Param::Text(v)
    }
}

/// Bound parameters per statement on PostgreSQL (its limit is 65,535).
const MAX_PARAMS_POSTGRES: usize = 30_000;
/// On SQLite (its limit is 32,766). Its placeholders are anonymous (see
/// [`values`]), so a bigger statement only costs a longer parse.
const MAX_PARAMS_SQLITE: usize = 10_000;

/// Runs `{before} ($1, $2), ($3, $4) {after}` (placeholders as [`values`]
/// writes them) over `rows`, as few statements as the parameter limits
/// allow. Every row has the same width. Nothing runs for no rows.
pub async fn execute_values(
    conn: &mut AnyConnection,
    before: &str,
    after: &str,
    rows: &[Vec<Param>],
) -> Result<(), sqlx::Error> {
    let Some(width) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    assert!(width > 0, "rows have at least one value");
    let (kind, max_params) = match conn.backend_name() {
        "SQLite" => (DbKind::Sqlite, MAX_PARAMS_SQLITE),
        _ => (DbKind::Postgres, MAX_PARAMS_POSTGRES),
    };
    for chunk in rows.chunks((max_params / width).max(1)) {
        let sql = format!("{before} {} {after}", values(kind, chunk.len(), width));
        // Not prepared and kept: each chunk size would be a new statement.
        let mut query = sqlx::query(&sql).persistent(false);
        for row in chunk {
            assert_eq!(row.len(), width, "rows of one width");
            for value in row {
                query = match value {
                    Param::Int(v) => query.bind(*v),
                    Param::Text(v) => query.bind(v.clone()),
                };
            }
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The placeholders of `rows` rows of `width` values: `($1, $2), ($3, $4)`
/// for two rows of two on PostgreSQL, `(?, ?), (?, ?)` on SQLite. SQLite
/// keeps numbered parameters in a list it searches by name, when parsing
/// and again when binding each one, so a statement's cost would grow with
/// the square of its parameters; anonymous ones skip the list.
pub fn values(kind: DbKind, rows: usize, width: usize) -> String {
    let mut sql = String::with_capacity(rows * width * 6);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            match kind {
                DbKind::Sqlite => sql.push('?'),
                DbKind::Postgres => {
                    sql.push('$');
                    sql.push_str(&(r * width + c + 1).to_string());
                }
            }
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_every_value_once() {
        assert_eq!(values(DbKind::Postgres, 2, 2), "($1, $2), ($3, $4)");
        assert_eq!(values(DbKind::Postgres, 1, 3), "($1, $2, $3)");
        assert_eq!(values(DbKind::Sqlite, 2, 2), "(?, ?), (?, ?)");
    }

    #[tokio::test]
    async fn rows_beyond_one_statement_are_all_written() {
        let db = crate::Db::connect("sqlite::memory:").await.unwrap();
        let mut conn = db.writer().acquire().await.unwrap();
        sqlx::query("CREATE TABLE t (a BIGINT, b TEXT)")
            .execute(&mut *conn)
            .await
            .unwrap();
        // 20,000 rows of two: many statements.
        let rows: Vec<Vec<Param>> = (0..20_000)
            .map(|i| {
                vec![
                    Param::Int(i),
                    Param::Text((i % 2 == 0).then(|| i.to_string())),
                ]
            })
            .collect();
        execute_values(&mut conn, "INSERT INTO t (a, b) VALUES", "", &rows)
            .await
            .unwrap();
        let (count, texts, sum): (i64, i64, i64) =
            sqlx::query_as("SELECT COUNT(*), COUNT(b), SUM(a) FROM t")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        assert_eq!((count, texts, sum), (20_000, 10_000, 199_990_000));
        execute_values(
            &mut conn,
            "DELETE FROM t WHERE (a, b) IN (VALUES",
            ")",
            &rows[..3],
        )
        .await
        .unwrap();
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        // Row 1 has a NULL b: NULL never equals NULL, so it stays.
        assert_eq!(count, 19_998);
    }
}
