//! The dialect: what SQLite and PostgreSQL say differently, so that the store's logic is
//! written once. A body written once is expanded by [`written_once!`] into a method of
//! [`SqliteStore`](super::SqliteStore), one of [`PgStore`](super::PgStore) and a forwarding
//! method of [`Store`](super::Store); inside it these differ per backend:
//! - `sql!("NAME")`: the text of `src/store/queries/{sqlite,postgres}/NAME.sql` (same file
//!   names per backend), for a statement whose text differs (`MAX` vs `GREATEST`, `now()`,
//!   casts, locking). A statement both backends run verbatim (sqlx-sqlite binds `$N` by its
//!   number, like PostgreSQL) stays inline in the one body: a second copy is the twin this
//!   module exists to remove;
//! - `self.begin_pick()`: how a transaction that reads and then writes starts (SQLite takes
//!   the write lock first, `BEGIN IMMEDIATE`; PostgreSQL locks the rows it reads);
//! - the types `Conn` and `DbRow`, for helpers that take the caller's transaction or a row;
//! - `backend::NAME`: the backend's own helper of that name (`lock_lead`: PostgreSQL locks
//!   the lead's row, SQLite's single writer already holds the lock).
//!
//! Why a `macro_rules!` and not functions generic over `sqlx::Database`: a generic body
//! needs, for every query, bounds that each bound type is `Encode + Type` for the database,
//! that `&mut Conn` is an `Executor` and that each read column `Decode`s — several lines of
//! `where` clauses per method, which would make the store harder to read than the twins
//! were. The macro type-checks the same text against each backend's concrete types, so an
//! SQLite-only type or decoding still fails to compile, and the store's methods keep their
//! plain signatures. Where the semantics genuinely differ (a boolean stored as an INTEGER,
//! the database clock for leases, the pending lead of migration 0010 on SQLite), the method
//! stays in the backend's own file with a one-line comment why.
//!
//! Must not: hold SQL itself or decide anything; it only names what differs.

/// Expands each `pub async fn` (taking `&self`) for both backends and forwards it from
/// [`Store`](super::Store). Optional leading sections: `helpers { items }` (free items per
/// backend, e.g. a row decoder taking `&DbRow`; reachable as `THIS_MODULE::sqlite::NAME`)
/// and `backend { methods }` (methods on the backend types only, not forwarded).
macro_rules! written_once {
    (
        $(helpers { $($helper:tt)* })?
        $(backend { $($own:tt)* })?
        $(
            $(#[$m:meta])*
            pub async fn $name:ident(&$s:ident $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty
            $body:block
        )*
    ) => {
        #[allow(unused_imports, dead_code)]
        pub(in crate::store) mod sqlite {
            use super::*;
            use $crate::store::dialect::sqlite::*;
            use $crate::store::sqlite as backend;
            #[allow(unused_macros)]
            macro_rules! sql {
                ($n:literal) => {
                    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/store/queries/sqlite/", $n, ".sql"))
                };
            }
            $($($helper)*)?
            impl $crate::store::SqliteStore {
                $($($own)*)?
                $( $(#[$m])* pub async fn $name(&$s $(, $arg: $ty)*) -> $ret $body )*
            }
        }
        #[allow(unused_imports, dead_code)]
        pub(in crate::store) mod postgres {
            use super::*;
            use $crate::store::dialect::postgres::*;
            use $crate::store::postgres as backend;
            #[allow(unused_macros)]
            macro_rules! sql {
                ($n:literal) => {
                    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/store/queries/postgres/", $n, ".sql"))
                };
            }
            $($($helper)*)?
            impl $crate::store::PgStore {
                $($($own)*)?
                $( $(#[$m])* pub async fn $name(&$s $(, $arg: $ty)*) -> $ret $body )*
            }
        }
        impl $crate::store::Store {
            $(
                $(#[$m])*
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        $crate::store::Store::Sqlite(s) => s.$name($($arg),*).await,
                        $crate::store::Store::Postgres(s) => s.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}
pub(super) use written_once;

/// Forwards methods each backend writes in its own file (the semantics differ) from
/// [`Store`](super::Store): one line of signature instead of a body each.
macro_rules! forward {
    ($(
        $(#[$m:meta])*
        pub async fn $name:ident(&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty;
    )*) => {
        impl $crate::store::Store {
            $(
                $(#[$m])*
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        $crate::store::Store::Sqlite(s) => s.$name($($arg),*).await,
                        $crate::store::Store::Postgres(s) => s.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}
pub(super) use forward;

/// SQLite's side of the dialect.
pub(super) mod sqlite {
    #[allow(dead_code)]
    pub type Conn = sqlx::SqliteConnection;
    pub type DbRow = sqlx::sqlite::SqliteRow;

    impl crate::store::SqliteStore {
        /// A transaction that reads and then writes: the write lock first (`BEGIN
        /// IMMEDIATE`), or a deferred one that read could not write once another writer
        /// committed (SQLITE_BUSY_SNAPSHOT).
        pub(in crate::store) async fn begin_pick(
            &self,
        ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
            self.pool.begin_with("BEGIN IMMEDIATE").await
        }
    }
}

/// PostgreSQL's side of the dialect.
pub(super) mod postgres {
    #[allow(dead_code)]
    pub type Conn = sqlx::PgConnection;
    pub type DbRow = sqlx::postgres::PgRow;

    impl crate::store::PgStore {
        /// A transaction that reads and then writes: rows are locked as the statements read
        /// them (`FOR UPDATE`, upserts), so a plain `BEGIN`.
        pub(in crate::store) async fn begin_pick(
            &self,
        ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
            self.pool.begin().await
        }
    }
}
