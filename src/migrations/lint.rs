//! Lint of SQL migrations (PostgreSQL dialect, parsed with `sqlparser`):
//! what destroys data or locks tables.
//!
//! Rules (severity, rule name):
//!
//! * `error` `drop-table` — `DROP TABLE` (and `drop-schema` for `DROP SCHEMA`);
//! * `error` `drop-column` — `ALTER TABLE … DROP COLUMN`;
//! * `error` `truncate` — `TRUNCATE`;
//! * `error` `type-change` — `ALTER COLUMN … TYPE` to a bounded type (a
//!   length or precision such as `varchar(20)`/`numeric(5,2)`, or
//!   `smallint`/`integer`/`boolean`/`real`/`date`): existing values may be
//!   truncated or the rewrite fail; `warning` for other types (the table
//!   is rewritten under an `ACCESS EXCLUSIVE` lock);
//! * `warning` `rename` — `RENAME COLUMN`, `RENAME TO`: the running
//!   (baseline) code still uses the old name;
//! * `warning` `set-not-null` — `SET NOT NULL` on a column with no
//!   `SET DEFAULT` and no `UPDATE` of its table earlier in the same file
//!   (backfill), and `ADD COLUMN … NOT NULL` without `DEFAULT`;
//! * `warning` `index-not-concurrent` — `CREATE INDEX` without
//!   `CONCURRENTLY` on a table not created in the same file (it blocks
//!   writes while it builds; PostgreSQL);
//! * `error` `unparsed` — SQL the parser does not understand: not checked
//!   is never a pass.
//!
//! `missing-downgrade` / `empty-downgrade` come from [`super::disk`] and
//! [`super::python`].

use super::{Finding, Severity};
use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, ColumnOption, ObjectName, ObjectType, Statement,
    TableFactor,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};
use std::collections::BTreeSet;

/// What earlier statements of the same migration did, for rules that
/// depend on it (a backfill before `SET NOT NULL`, an index on a new table).
#[derive(Debug, Default, Clone)]
pub struct Context {
    /// Tables updated (backfilled), lower-case, without schema.
    pub updated: BTreeSet<String>,
    /// `(table, column)` given a default.
    pub defaults: BTreeSet<(String, String)>,
    /// Tables created.
    pub created: BTreeSet<String>,
}

/// A table name as compared: the last part, lower-case.
pub fn table_key(name: &str) -> String {
    name.rsplit('.')
        .next()
        .unwrap_or(name)
        .trim_matches('"')
        .to_lowercase()
}

fn object_key(n: &ObjectName) -> String {
    n.0.last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.to_lowercase())
        .unwrap_or_else(|| table_key(&n.to_string()))
}

fn finding(severity: Severity, rule: &str, line: u32, message: String) -> Finding {
    Finding {
        severity,
        rule: rule.into(),
        line: Some(line),
        message,
    }
}

/// The statements of `text` as token runs split at `;`, each with the line
/// of its first token; whitespace and comment-only runs dropped.
/// A statement's first line and tokens.
type Stmt = (u32, Vec<TokenWithSpan>);

fn statements(text: &str) -> Result<Vec<Stmt>, (u32, String)> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, text)
        .tokenize_with_location()
        .map_err(|e| (e.location.line as u32, e.message))?;
    let mut out = Vec::new();
    let mut cur: Vec<TokenWithSpan> = Vec::new();
    let mut flush = |cur: &mut Vec<TokenWithSpan>| {
        let first = cur
            .iter()
            .find(|t| !matches!(t.token, Token::Whitespace(_)))
            .map(|t| t.span.start.line as u32);
        if let Some(line) = first {
            out.push((line, std::mem::take(cur)));
        } else {
            cur.clear();
        }
    };
    for t in tokens {
        if t.token == Token::SemiColon {
            flush(&mut cur);
        } else {
            cur.push(t);
        }
    }
    flush(&mut cur);
    Ok(out)
}

/// How many statements `text` holds (`None` when it does not tokenize).
pub fn statement_count(text: &str) -> Option<usize> {
    statements(text).ok().map(|s| s.len())
}

/// Lints a SQL file (`first_line` = 1) or a SQL string embedded at line
/// `first_line` of a file (Alembic `op.execute`). Findings in statement
/// order, each at the line of its statement.
pub fn lint_sql(text: &str, first_line: u32) -> Vec<Finding> {
    lint_sql_with(text, first_line, &mut Context::default())
}

/// [`lint_sql`] continuing a migration's [`Context`].
pub fn lint_sql_with(text: &str, first_line: u32, ctx: &mut Context) -> Vec<Finding> {
    let at = |line: u32| first_line + line.saturating_sub(1);
    let stmts = match statements(text) {
        Ok(s) => s,
        Err((line, msg)) => {
            return vec![finding(
                Severity::Error,
                "unparsed",
                at(line.max(1)),
                format!("not linted: SQL does not tokenize: {msg}"),
            )];
        }
    };
    let dialect = PostgreSqlDialect {};
    let mut out = Vec::new();
    for (line, tokens) in stmts {
        let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
        let parsed = parser.parse_statement().and_then(|s| {
            if parser.peek_token().token == Token::EOF {
                Ok(s)
            } else {
                Err(sqlparser::parser::ParserError::ParserError(format!(
                    "unexpected {} after the statement",
                    parser.peek_token().token
                )))
            }
        });
        match parsed {
            Ok(s) => lint_statement(&s, at(line), ctx, &mut out),
            Err(e) => out.push(finding(
                Severity::Error,
                "unparsed",
                at(line),
                format!("not linted: {e}"),
            )),
        }
    }
    out
}

/// A type change to this type may truncate values or fail the rewrite.
pub fn bounded_type(t: &str) -> bool {
    let u = t.trim().to_uppercase();
    u.contains('(')
        || matches!(
            u.as_str(),
            "SMALLINT"
                | "INT2"
                | "INT"
                | "INTEGER"
                | "INT4"
                | "BOOLEAN"
                | "BOOL"
                | "REAL"
                | "FLOAT4"
                | "DATE"
                | "CHAR"
                | "CHARACTER"
        )
}

fn lint_statement(s: &Statement, line: u32, ctx: &mut Context, out: &mut Vec<Finding>) {
    match s {
        Statement::Drop {
            object_type, names, ..
        } => {
            let list = names
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            match object_type {
                ObjectType::Table => out.push(finding(
                    Severity::Error,
                    "drop-table",
                    line,
                    format!("DROP TABLE {list}: the table and its data are gone"),
                )),
                ObjectType::Schema => out.push(finding(
                    Severity::Error,
                    "drop-schema",
                    line,
                    format!("DROP SCHEMA {list}: every table in it is gone"),
                )),
                _ => {}
            }
        }
        Statement::Truncate(t) => {
            let list = t
                .table_names
                .iter()
                .map(|n| n.name.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            out.push(finding(
                Severity::Error,
                "truncate",
                line,
                format!("TRUNCATE {list}: every row is deleted"),
            ));
        }
        Statement::CreateTable(c) => {
            ctx.created.insert(object_key(&c.name));
        }
        Statement::Update(u) => {
            if let TableFactor::Table { name, .. } = &u.table.relation {
                ctx.updated.insert(object_key(name));
            }
        }
        Statement::CreateIndex(ci) => {
            let table = object_key(&ci.table_name);
            if !ci.concurrently && !ctx.created.contains(&table) {
                out.push(finding(
                    Severity::Warning,
                    "index-not-concurrent",
                    line,
                    format!(
                        "CREATE INDEX {} ON {} without CONCURRENTLY blocks writes to the table while it builds",
                        ci.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                        ci.table_name
                    ),
                ));
            }
        }
        Statement::AlterTable(at) => {
            let table = object_key(&at.name);
            for op in &at.operations {
                alter_op(&at.name.to_string(), &table, op, line, ctx, out);
            }
        }
        _ => {}
    }
}

fn alter_op(
    shown: &str,
    table: &str,
    op: &AlterTableOperation,
    line: u32,
    ctx: &mut Context,
    out: &mut Vec<Finding>,
) {
    match op {
        AlterTableOperation::DropColumn { column_names, .. } => {
            let cols = column_names
                .iter()
                .map(|c| c.value.clone())
                .collect::<Vec<_>>()
                .join(", ");
            out.push(finding(
                Severity::Error,
                "drop-column",
                line,
                format!("DROP COLUMN {shown}.{cols}: the column's data is gone"),
            ));
        }
        AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => out.push(finding(
            Severity::Warning,
            "rename",
            line,
            format!(
                "RENAME COLUMN {shown}.{old_column_name} TO {new_column_name}: the running baseline still uses the old name"
            ),
        )),
        AlterTableOperation::RenameTable { .. } => out.push(finding(
            Severity::Warning,
            "rename",
            line,
            format!("RENAME TABLE {shown}: the running baseline still uses the old name"),
        )),
        AlterTableOperation::AddColumn { column_def, .. } => {
            let opts: Vec<&ColumnOption> = column_def.options.iter().map(|o| &o.option).collect();
            let not_null = opts.iter().any(|o| matches!(o, ColumnOption::NotNull));
            let default = opts.iter().any(|o| matches!(o, ColumnOption::Default(_)));
            if not_null && !default {
                out.push(finding(
                    Severity::Warning,
                    "set-not-null",
                    line,
                    format!(
                        "ADD COLUMN {shown}.{} NOT NULL without DEFAULT fails on a table with rows",
                        column_def.name
                    ),
                ));
            }
        }
        AlterTableOperation::AlterColumn { column_name, op } => {
            let col = column_name.value.to_lowercase();
            match op {
                AlterColumnOperation::SetDefault { .. } => {
                    ctx.defaults.insert((table.to_string(), col));
                }
                AlterColumnOperation::SetNotNull
                    if !ctx.updated.contains(table)
                        && !ctx.defaults.contains(&(table.to_string(), col)) =>
                {
                    out.push(finding(
                        Severity::Warning,
                        "set-not-null",
                        line,
                        format!(
                            "SET NOT NULL on {shown}.{column_name} without a default or a backfill: fails if a row holds NULL, and scans the table under an exclusive lock"
                        ),
                    ));
                }
                AlterColumnOperation::SetDataType { data_type, .. } => {
                    out.push(type_change(
                        &format!("{shown}.{column_name}"),
                        &data_type.to_string(),
                        line,
                    ));
                }
                _ => {}
            }
        }
        _ => {}
    }
}

/// The `type-change` finding for `column` changed to type `to`.
pub fn type_change(column: &str, to: &str, line: u32) -> Finding {
    if bounded_type(to) {
        finding(
            Severity::Error,
            "type-change",
            line,
            format!(
                "{column} changes type to {to}: existing values may be truncated or the rewrite fail"
            ),
        )
    } else {
        finding(
            Severity::Warning,
            "type-change",
            line,
            format!(
                "{column} changes type to {to}: the table is rewritten under an ACCESS EXCLUSIVE lock"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(sql: &str) -> Vec<(String, Severity, Option<u32>)> {
        lint_sql(sql, 1)
            .into_iter()
            .map(|f| (f.rule, f.severity, f.line))
            .collect()
    }

    #[test]
    fn destructive_statements_are_errors_at_their_line() {
        let sql = "-- drop things\nCREATE TABLE t (id int);\n\nALTER TABLE users\n  DROP COLUMN email;\nDROP TABLE old_orders;\nTRUNCATE audit;";
        assert_eq!(
            rules(sql),
            vec![
                ("drop-column".into(), Severity::Error, Some(4)),
                ("drop-table".into(), Severity::Error, Some(6)),
                ("truncate".into(), Severity::Error, Some(7)),
            ]
        );
    }

    #[test]
    fn locks_and_renames_are_warnings() {
        let sql = "CREATE INDEX i ON users (email);\nCREATE INDEX CONCURRENTLY j ON users (name);\nALTER TABLE users RENAME COLUMN a TO b;\nALTER TABLE users ALTER COLUMN c TYPE text;\nALTER TABLE users ALTER COLUMN d TYPE varchar(10);";
        assert_eq!(
            rules(sql),
            vec![
                ("index-not-concurrent".into(), Severity::Warning, Some(1)),
                ("rename".into(), Severity::Warning, Some(3)),
                ("type-change".into(), Severity::Warning, Some(4)),
                ("type-change".into(), Severity::Error, Some(5)),
            ]
        );
    }

    #[test]
    fn not_null_needs_a_backfill_or_default() {
        assert_eq!(
            rules("ALTER TABLE p ALTER COLUMN s SET NOT NULL;"),
            vec![("set-not-null".into(), Severity::Warning, Some(1))]
        );
        assert!(
            rules(
                "UPDATE p SET s = 'a' WHERE s IS NULL; ALTER TABLE p ALTER COLUMN s SET NOT NULL;"
            )
            .is_empty()
        );
        assert!(rules("ALTER TABLE p ALTER COLUMN s SET DEFAULT 'a';\nALTER TABLE p ALTER COLUMN s SET NOT NULL;").is_empty());
        assert_eq!(
            rules("ALTER TABLE p ADD COLUMN s text NOT NULL;"),
            vec![("set-not-null".into(), Severity::Warning, Some(1))]
        );
        assert!(rules("ALTER TABLE p ADD COLUMN s text NOT NULL DEFAULT 'x';").is_empty());
    }

    #[test]
    fn an_index_on_a_new_table_is_fine() {
        assert!(rules("CREATE TABLE n (id int);\nCREATE INDEX k ON n (id);").is_empty());
    }

    #[test]
    fn unparseable_sql_is_never_a_pass() {
        let r = rules("SELECT 1;\nALTER TABLE x FROBNICATE y;");
        assert_eq!(r, vec![("unparsed".into(), Severity::Error, Some(2))]);
        assert_eq!(
            rules("SELECT 'unterminated"),
            vec![("unparsed".into(), Severity::Error, Some(1))]
        );
    }

    #[test]
    fn embedded_sql_lines_are_offset() {
        let f = lint_sql("\n  DROP TABLE x", 10);
        assert_eq!(f[0].line, Some(11));
    }

    #[test]
    fn counts_statements() {
        assert_eq!(statement_count("-- nothing\n\n"), Some(0));
        assert_eq!(statement_count("SELECT 1; SELECT 2;"), Some(2));
    }
}
