//! The statement behind `pool.insert(table, row, { idempotency, conflictTarget })`.
//!
//! Identifiers are quoted with `postgres-protocol`'s escaping (libpq's
//! `PQescapeIdentifier`); values travel as parameters, typed by the server from the target
//! columns (the statement cache's Describe), like any query's.

use postgres_protocol::escape::escape_identifier;
use std::fmt::Write;

/// `INSERT INTO <table> (<columns>) VALUES ($1, ...) [ON CONFLICT (<target>) DO NOTHING]
/// RETURNING *`, or `DEFAULT VALUES` for a row without columns. `table` is the name's parts
/// (`["schema", "table"]`, or just `["table"]`). With `on_conflict`, a row whose key already
/// exists is left alone and the statement returns no row: that is what makes an insert
/// safe to run twice.
pub fn insert_sql(
    table: &[String],
    columns: &[String],
    on_conflict: Option<&[String]>,
) -> Result<String, String> {
    if table.is_empty() {
        return Err("insert needs a table name".into());
    }
    let mut sql = String::from("INSERT INTO ");
    push_list(&mut sql, table, ".", "table name")?;
    if columns.is_empty() {
        sql.push_str(" DEFAULT VALUES");
    } else {
        sql.push_str(" (");
        push_list(&mut sql, columns, ", ", "column name")?;
        sql.push_str(") VALUES (");
        for i in 1..=columns.len() {
            if i > 1 {
                sql.push_str(", ");
            }
            // Writing to a String cannot fail.
            let _ = write!(sql, "${i}");
        }
        sql.push(')');
    }
    if let Some(target) = on_conflict {
        if target.is_empty() {
            return Err("conflictTarget must name at least one column".into());
        }
        sql.push_str(" ON CONFLICT (");
        push_list(&mut sql, target, ", ", "conflictTarget column")?;
        sql.push_str(") DO NOTHING");
    }
    sql.push_str(" RETURNING *");
    Ok(sql)
}

fn push_list(sql: &mut String, names: &[String], sep: &str, what: &str) -> Result<(), String> {
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(format!("a {what} cannot be empty"));
        }
        if name.contains('\0') {
            return Err(format!("a {what} cannot contain a NUL character"));
        }
        if i > 0 {
            sql.push_str(sep);
        }
        sql.push_str(&escape_identifier(name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn plain_and_idempotent() {
        assert_eq!(
            insert_sql(&s(&["orders"]), &s(&["_id", "amount"]), None).unwrap(),
            r#"INSERT INTO "orders" ("_id", "amount") VALUES ($1, $2) RETURNING *"#
        );
        assert_eq!(
            insert_sql(&s(&["app", "orders"]), &s(&["_id"]), Some(&s(&["_id"]))).unwrap(),
            r#"INSERT INTO "app"."orders" ("_id") VALUES ($1) ON CONFLICT ("_id") DO NOTHING RETURNING *"#
        );
        assert_eq!(
            insert_sql(&s(&["t"]), &[], Some(&s(&["a", "b"]))).unwrap(),
            r#"INSERT INTO "t" DEFAULT VALUES ON CONFLICT ("a", "b") DO NOTHING RETURNING *"#
        );
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(
            insert_sql(
                &s(&["we\"ird"]),
                &s(&["Mixed Case", "x\"); drop table t; --"]),
                None
            )
            .unwrap(),
            r#"INSERT INTO "we""ird" ("Mixed Case", "x""); drop table t; --") VALUES ($1, $2) RETURNING *"#
        );
    }

    #[test]
    fn rejects_what_cannot_be_an_identifier() {
        assert!(insert_sql(&[], &s(&["a"]), None).is_err());
        assert!(insert_sql(&s(&[""]), &s(&["a"]), None).is_err());
        assert!(insert_sql(&s(&["t"]), &s(&["a\0b"]), None).is_err());
        assert!(insert_sql(&s(&["t"]), &s(&["a"]), Some(&[])).is_err());
        assert!(insert_sql(&s(&["t"]), &s(&["a"]), Some(&s(&[""]))).is_err());
    }
}
