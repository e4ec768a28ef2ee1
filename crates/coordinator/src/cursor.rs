//! SQL cursors and SQL-level PREPARE on a coordinator.
//!
//! `DECLARE c [BINARY] [SCROLL | NO SCROLL] CURSOR [WITHOUT HOLD] FOR <query>` evaluates `<query>`
//! through the coordinator's own planning (so it reads the datanodes under the statement's snapshot,
//! as any SELECT does; PostgreSQL's cursors see the snapshot of their DECLARE too), keeps the result
//! in a session rowset `__pgxc_cursor_<c>` of the coordinator's catalog session, and declares the
//! cursor there over that rowset. `FETCH`, `MOVE` and `CLOSE` then run on the catalog session. The
//! rowset ends with the transaction block, as a cursor without HOLD does. The result is held in the
//! coordinator's memory (Postgres-XC also materialised a cursor's remote rows on the coordinator).
//!
//! Errors: 25P01 outside a transaction block (PostgreSQL's rule for cursors without HOLD); 0A000 for
//! `WITH HOLD` and for SQL `PREPARE` / `EXECUTE` / `DEALLOCATE` (the extended protocol's
//! Parse/Bind/Execute is the supported way to prepare statements); those of the query.

use super::*;

impl CoordSession {
    /// `DECLARE ... CURSOR FOR <query>` (the module's description). Answers `DECLARE CURSOR`.
    pub(super) async fn declare_cursor(
        &mut self,
        text: &str,
        stmts: &[ast::Declare],
    ) -> Result<QueryResult, PgError> {
        let [d] = stmts else {
            return self.local_exec(text, true).await;
        };
        let Some(query) = d.for_query.as_deref() else {
            return self.local_exec(text, true).await;
        };
        if d.hold == Some(true) {
            return Err(unsupported("DECLARE ... CURSOR WITH HOLD"));
        }
        if self.block.is_none() {
            return Err(PgError::new(
                SqlState::NoActiveSqlTransaction,
                "DECLARE CURSOR can only be used in transaction blocks",
            ));
        }
        let [name] = d.names.as_slice() else {
            return Err(PgError::new(
                SqlState::SyntaxError,
                "DECLARE CURSOR takes one cursor name",
            ));
        };
        let name = parser::normalize_ident(name);
        let rowset = format!("__pgxc_cursor_{name}");
        let result = Box::pin(self.select(&query.to_string(), query)).await?;
        if !self.txn.as_ref().is_some_and(|t| t.local_begun) {
            // Opens the catalog session's part of the global transaction (BEGIN, savepoints).
            self.local_run("", true).await?;
        }
        let txn = self.txn()?;
        let directed = Directed {
            gxid: txn.gxid,
            snapshot: txn.snapshot.clone(),
        };
        let (rs, columns, rows) = (rowset.clone(), result.columns, result.rows);
        self.local
            .call(move |s| {
                s.direct(Some(directed));
                s.rowset_drop(&rs);
                s.rowset_create(&rs, columns)?;
                s.rowset_append(&rs, rows).map(|_| ())
            })
            .await
            .map_err(io_err)??;
        let mut local = String::from("DECLARE ");
        local.push_str(&format!("\"{}\" ", name.replace('"', "\"\"")));
        if d.binary == Some(true) {
            local.push_str("BINARY ");
        }
        match d.scroll {
            Some(true) => local.push_str("SCROLL "),
            Some(false) => local.push_str("NO SCROLL "),
            None => {}
        }
        local.push_str(&format!("CURSOR FOR SELECT * FROM \"{rowset}\""));
        self.local_exec(&local, true).await?;
        Ok(QueryResult::command("DECLARE CURSOR"))
    }
}
