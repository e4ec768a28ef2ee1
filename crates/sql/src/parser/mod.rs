//! The SQL front end. (Being built.)
