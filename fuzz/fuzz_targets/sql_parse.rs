//! Arbitrary input (as lossy UTF-8) given to the SQL front end must parse or give an error, never panic or
//! overflow the stack; a syntax error's position must fall inside the string (or just past its end).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let sql = String::from_utf8_lossy(data);
    match pgxc_sql::parser::parse_spanned(&sql) {
        Ok(stmts) => {
            for s in stmts {
                assert_eq!(&sql[s.span.clone()], s.text);
            }
        }
        Err(e) => {
            if let Some(p) = e.position {
                assert!(p >= 1 && p as usize <= sql.chars().count() + 1, "{e:?}");
            }
        }
    }
});
