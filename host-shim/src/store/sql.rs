//! One way to run the store's SQL on either backend.
//!
//! The store's queries are written once, in the dialect SQLite and
//! PostgreSQL share (`ON CONFLICT`, `RETURNING`, `COALESCE`, `?N`
//! parameters, a real `rowid` column on the tables ordered by insertion).
//! [`Db`] runs one on an SQLite connection or on a pooled PostgreSQL one;
//! [`Value`] carries parameters and columns, converted to whatever type the
//! database declares, so integers, booleans (stored as 0/1 on both), text and
//! bytes need no per-backend code above this module.

use super::{Result, StoreError};
use std::borrow::Cow;
use std::fmt::Display;

/// A parameter or a column, whichever backend it goes to or comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// What can be passed as a query parameter (see [`args!`]).
pub trait ToValue {
    fn to_value(&self) -> Value;
}

macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(*self as i64)
            }
        }
    )*};
}
int_to_value!(i64, i32, i16, u8, u16, u32, u64, usize);

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(*self as i64)
    }
}
impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}
impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}
impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}
impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}
impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}
impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

/// Query parameters: `args![id, name, now]` borrows each expression and
/// makes the slice [`Db`]'s methods take.
#[macro_export]
macro_rules! args {
    () => { &[] as &[$crate::store::sql::Value] };
    ($($arg:expr),+ $(,)?) => {
        &[$($crate::store::sql::ToValue::to_value(&$arg)),+] as &[$crate::store::sql::Value]
    };
}
pub use args;

/// What a column can be read as.
pub trait FromValue: Sized {
    fn from_value(value: Value) -> std::result::Result<Self, String>;
}

impl FromValue for Value {
    fn from_value(value: Value) -> std::result::Result<Self, String> {
        Ok(value)
    }
}
impl FromValue for i64 {
    fn from_value(value: Value) -> std::result::Result<Self, String> {
        match value {
            Value::Int(n) => Ok(n),
            Value::Real(f) if f.fract() == 0.0 => Ok(f as i64),
            other => Err(format!("expected an integer, found {}", kind_of(&other))),
        }
    }
}
macro_rules! narrow_int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: Value) -> std::result::Result<Self, String> {
                let n = i64::from_value(value)?;
                <$t>::try_from(n).map_err(|_| format!("{n} is out of range"))
            }
        }
    )*};
}
narrow_int_from_value!(i32, i16, u8, u16, u32, u64, usize);

impl FromValue for bool {
    fn from_value(value: Value) -> std::result::Result<Self, String> {
        Ok(i64::from_value(value)? != 0)
    }
}
impl FromValue for f64 {
    fn from_value(value: Value) -> std::result::Result<Self, String> {
        match value {
            Value::Real(f) => Ok(f),
            Value::Int(n) => Ok(n as f64),
            other => Err(format!("expected a number, found {}", kind_of(&other))),
        }
    }
}
impl FromValue for String {
    fn from_value(value: Value) -> std::result::Result<Self, String> {
        match value {
            Value::Text(s) => Ok(s),
            Value::Blob(b) => String::from_utf8(b).map_err(|_| "text that is not UTF-8".into()),
            other => Err(format!("expected text, found {}", kind_of(&other))),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(value: Value) -> std::result::Result<Self, String> {
        match value {
            Value::Blob(b) => Ok(b),
            Value::Text(s) => Ok(s.into_bytes()),
            other => Err(format!("expected bytes, found {}", kind_of(&other))),
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Value) -> std::result::Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

pub(super) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "NULL",
        Value::Int(_) => "an integer",
        Value::Real(_) => "a real",
        Value::Text(_) => "text",
        Value::Blob(_) => "bytes",
    }
}

/// A column by position or by name, on either backend.
pub trait Column: rusqlite::RowIndex + tokio_postgres::row::RowIndex + Display + Copy {}
impl Column for usize {}
impl Column for &str {}

/// One row of a result.
pub enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a tokio_postgres::Row),
}

impl Row<'_> {
    pub fn get<C: Column, T: FromValue>(&self, column: C) -> Result<T> {
        let value = match self {
            Row::Sqlite(row) => row
                .get_ref(column)
                .map(sqlite_value)
                .map_err(StoreError::from)?,
            Row::Postgres(row) => row
                .try_get::<_, Value>(column)
                .map_err(|e| StoreError::Db(format!("column {column}: {e}")))?,
        };
        T::from_value(value).map_err(|e| StoreError::Db(format!("column {column}: {e}")))
    }
}

fn sqlite_value(value: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Int(n),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(n) => ValueRef::Integer(*n),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// Which database a [`Db`] talks to, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection to run statements on; inside a write, the write's
/// transaction.
pub enum Db<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a super::postgres::Session),
}

impl Db<'_> {
    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs one statement; returns how many rows it changed.
    pub fn execute(&self, sql: &str, args: &[Value]) -> Result<usize> {
        match self {
            Db::Sqlite(c) => Ok(c
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(args))?),
            Db::Postgres(s) => s.execute(&postgres_sql(sql), args),
        }
    }

    /// The first row of a query, if there is one.
    pub fn row<T>(
        &self,
        sql: &str,
        args: &[Value],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        match self {
            Db::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
                match rows.next()? {
                    Some(row) => f(&Row::Sqlite(row)).map(Some),
                    None => Ok(None),
                }
            }
            Db::Postgres(s) => match s.query(&postgres_sql(sql), args)?.first() {
                Some(row) => f(&Row::Postgres(row)).map(Some),
                None => Ok(None),
            },
        }
    }

    /// The first row of a query that always has one (an aggregate).
    pub fn one<T>(
        &self,
        sql: &str,
        args: &[Value],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.row(sql, args, f)?
            .ok_or_else(|| StoreError::Db(format!("no row from {sql}")))
    }

    /// Every row of a query.
    pub fn rows<T>(
        &self,
        sql: &str,
        args: &[Value],
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        match self {
            Db::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(f(&Row::Sqlite(row))?);
                }
                Ok(out)
            }
            Db::Postgres(s) => s
                .query(&postgres_sql(sql), args)?
                .iter()
                .map(|row| f(&Row::Postgres(row)))
                .collect(),
        }
    }

    /// Runs statements with no parameters and no results (DDL, savepoints).
    pub fn batch(&self, sql: &str) -> Result<()> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Db::Postgres(s) => s.batch(sql),
        }
    }
}

/// The store's SQL as PostgreSQL reads it: `?N` and `?` parameters become
/// `$N`, and `LIMIT -1` (SQLite's "no limit") becomes `LIMIT ALL`. Text in
/// quotes is left alone.
pub fn postgres_sql(sql: &str) -> Cow<'_, str> {
    if !sql.contains('?') && !sql.contains("LIMIT -1") {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 1;
    let mut chars = sql.char_indices().peekable();
    let mut quoted = false;
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
            out.push(c);
        } else if !quoted && c == '?' {
            let mut digits = String::new();
            while let Some(&(_, d)) = chars.peek() {
                if !d.is_ascii_digit() {
                    break;
                }
                digits.push(d);
                chars.next();
            }
            if digits.is_empty() {
                out.push('$');
                out.push_str(&next.to_string());
                next += 1;
            } else {
                out.push('$');
                out.push_str(&digits);
            }
        } else if !quoted && sql[i..].starts_with("LIMIT -1") {
            out.push_str("LIMIT ALL");
            for _ in 0.."LIMIT -1".len() - 1 {
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_and_no_limit_are_written_the_postgres_way_and_quoted_text_is_kept() {
        assert_eq!(
            postgres_sql("SELECT * FROM t WHERE a = ?1 AND b = ?12 AND c = '?1' LIMIT -1"),
            "SELECT * FROM t WHERE a = $1 AND b = $12 AND c = '?1' LIMIT ALL"
        );
        assert_eq!(postgres_sql("VALUES (?, ?)"), "VALUES ($1, $2)");
        assert!(matches!(postgres_sql("SELECT 1"), Cow::Borrowed(_)));
    }

    #[test]
    fn values_convert_to_what_the_reader_asks_for() {
        assert!(bool::from_value(Value::Int(1)).unwrap());
        assert_eq!(Option::<String>::from_value(Value::Null).unwrap(), None);
        assert_eq!(u32::from_value(Value::Int(7)).unwrap(), 7);
        assert!(u32::from_value(Value::Int(-1)).is_err());
        assert!(i64::from_value(Value::Text("x".into())).is_err());
        assert_eq!(args![1_i64, "a", true, None::<i64>].len(), 4);
    }
}
